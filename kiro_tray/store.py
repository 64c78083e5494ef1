"""Bounded request records: what the requests panel sees of each request.

The store is written only from the request events the gateway's middleware publishes
(:class:`~kiro_tray.events.RequestStarted`, :class:`~kiro_tray.events.RequestFinished`): subscribe
:meth:`RequestStore.on_event` to them.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from .events import Outcome, RequestEvent, RequestFinished, RequestStarted, ResponseStarted
from .signals import Signal

#: The record label of a client API's dialect ("openai", "anthropic", ...), or "info" for other routes.
ApiName = str
#: Records a store keeps for requests still in flight, looked up by request id.
_OPEN_LIMIT = 10_000


@dataclass(slots=True)
class RequestRecord:
    id: int
    request_id: str
    started_at: float  # wall clock, epoch seconds
    method: str
    path: str
    api: ApiName
    client: str = ""
    model: str | None = None
    stream: bool = False
    status: int | None = None  # None while in flight
    first_byte_ms: float | None = None
    total_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    credits: float | None = None
    retries: int = 0
    account: str | None = None
    hops: tuple[str, ...] = ()  # accounts that failed over before this one served it
    error: str | None = None
    error_kind: str | None = None
    tenant: str | None = None  # short hash of a tenant's token, never the token
    headers: dict[str, str] = field(default_factory=dict)  # redacted
    summary: str = ""
    repairs: tuple[str, ...] = ()
    dropped_tools: tuple[str, ...] = ()
    response_preview: str = ""

    @property
    def finished(self) -> bool:
        return self.status is not None


class RequestStore:
    """The newest ``capacity`` records; announces additions and updates precisely."""

    def __init__(self, capacity: int = 1000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._open: dict[int, RequestRecord] = {}
        self.added: Signal[RequestRecord] = Signal("store.added")
        self.updated: Signal[RequestRecord] = Signal("store.updated")
        self.cleared: Signal[None] = Signal("store.cleared")

    @property
    def capacity(self) -> int:
        return self._records.maxlen or 0

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self._records)

    def new(self, **values: object) -> RequestRecord:
        record = RequestRecord(id=next(self._ids), started_at=time.time(), **values)  # type: ignore[arg-type]
        self._records.append(record)
        self.added.emit(record)
        return record

    def touch(self, record: RequestRecord) -> None:
        self.updated.emit(record)

    def clear(self) -> None:
        self._records.clear()
        self.cleared.emit(None)

    def on_event(self, event: RequestEvent) -> None:
        """Records follow the request events of API routes (info routes leave no record)."""
        if isinstance(event, RequestStarted):
            if event.api == "info" or len(self._open) >= _OPEN_LIMIT:
                return
            self._open[event.key] = self.new(
                request_id=event.request_id,
                method=event.method,
                path=event.path,
                api=event.api,
                client=event.client,
                headers=event.headers,
            )
        elif isinstance(event, ResponseStarted):
            record = self._open.get(event.key)
            if record is not None:
                record.first_byte_ms = event.first_byte_ms
                self.touch(record)
        elif isinstance(event, RequestFinished):
            record = self._open.pop(event.key, None)
            if record is not None:
                _fill(record, event)
                self.touch(record)


def _fill(record: RequestRecord, event: RequestFinished) -> None:
    record.status = event.status
    record.total_ms = event.total_ms
    for name in _OUTCOME_FIELDS:
        setattr(record, name, getattr(event.outcome, name))


#: What a record takes over from a request's outcome (every field they share).
_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome) if f.name in RequestRecord.__dataclass_fields__)
