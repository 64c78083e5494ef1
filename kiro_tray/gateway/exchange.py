"""One request's facts while it is served, and the events that report them.

The middleware opens an :class:`Exchange` per request and publishes :class:`RequestStarted`; the handler
and the relay note facts on it (model, retries, account, tokens, the first byte); the middleware ends it
with :class:`RequestFinished`. Store, metrics, logs, the accounts registry and the UI subscribe to those
events: nothing else writes request bookkeeping.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..events import RequestEvent, RequestFinished, RequestStarted, ResponseStarted
from ..protocol.errors import GatewayError
from ..protocol.kiro_payload import KiroRequest
from ..protocol.turn import TurnUsage
from ..upstream.kiro_client import UpstreamRetried

_KEYS = itertools.count(1)


@dataclass(slots=True)
class Exchange:
    request_id: str
    method: str
    path: str
    route: str
    api: str
    publish: Callable[[RequestEvent], None]
    client_address: str | None = None
    key: int = field(default_factory=lambda: next(_KEYS))
    started: float = field(default_factory=time.monotonic)
    first_byte_ms: float | None = None
    streamed: bool = False
    model: str | None = None
    stream: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    credits: float | None = None
    retries: int = 0
    account: str | None = None
    tenant: str | None = None
    repairs: tuple[str, ...] = ()
    dropped_tools: tuple[str, ...] = ()
    summary: str = ""
    preview: str = ""
    error: str | None = None
    error_kind: str | None = None
    #: The status to record when it is not the response's (499: the client left mid-stream).
    status: int | None = None

    def begin(self, client: str, headers: dict[str, str]) -> None:
        self.publish(
            RequestStarted(
                self.key, self.request_id, self.method, self.path, self.api, client, headers, time.time()
            )
        )

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)

    def describe(self, kreq: KiroRequest) -> None:
        self.model = kreq.model
        self.stream = kreq.stream
        self.repairs = kreq.repairs
        self.dropped_tools = kreq.dropped_tools
        self.input_tokens = kreq.input_tokens
        state = kreq.payload.get("conversationState", {})
        current = state.get("currentMessage", {}).get("userInputMessage", {})
        tools = current.get("userInputMessageContext", {}).get("tools", [])
        turns = len(state.get("history", [])) + 1
        self.summary = f"{turns} turns to Kiro model {kreq.kiro_model_id}, {len(tools)} tools" + (
            ", thinking" if kreq.thinking else ""
        )

    def retried(self, event: UpstreamRetried) -> None:
        self.retries += 1

    def first_byte(self, *, streaming: bool) -> None:
        self.first_byte_ms = self.elapsed_ms()
        if streaming:
            self.streamed = True
            self.publish(ResponseStarted(self.key, self.request_id, self.first_byte_ms))

    def answered(self, usage: TurnUsage, preview: str) -> None:
        self.input_tokens = usage.input_tokens
        self.output_tokens = usage.output_tokens
        self.credits = usage.credits
        self.preview = preview

    def failed(self, error: GatewayError) -> None:
        """The first failure is the one recorded."""
        if self.error_kind is None:
            self.error, self.error_kind = error.message, error.kind

    def ended(self, kind: str, message: str) -> None:
        if self.error_kind is None:
            self.error, self.error_kind = message, kind

    def finish(self, status: int) -> None:
        self.publish(
            RequestFinished(
                key=self.key,
                request_id=self.request_id,
                method=self.method,
                path=self.path,
                route=self.route,
                api=self.api,
                status=self.status or status,
                total_ms=self.elapsed_ms(),
                first_byte_ms=self.first_byte_ms,
                streamed=self.streamed,
                model=self.model,
                stream=self.stream,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                credits=self.credits,
                retries=self.retries,
                account=self.account,
                tenant=self.tenant,
                repairs=self.repairs,
                dropped_tools=self.dropped_tools,
                summary=self.summary,
                preview=self.preview,
                error=self.error,
                error_kind=self.error_kind,
                client_address=self.client_address,
            )
        )
