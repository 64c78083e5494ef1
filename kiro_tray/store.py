"""Bounded request records: what the requests panel and the metrics see of each request."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from .signals import Signal

ApiName = Literal["openai", "anthropic", "info"]


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
