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
from dataclasses import dataclass, field, replace

from ..events import Outcome, RequestEvent, RequestFinished, RequestStarted, ResponseStarted
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
    outcome: Outcome = field(default_factory=Outcome)
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
        out = self.outcome
        out.model = kreq.model
        out.stream = kreq.stream
        out.repairs = kreq.repairs
        out.dropped_tools = kreq.dropped_tools
        out.input_tokens = kreq.input_tokens
        state = kreq.payload.get("conversationState", {})
        current = state.get("currentMessage", {}).get("userInputMessage", {})
        tools = current.get("userInputMessageContext", {}).get("tools", [])
        turns = len(state.get("history", [])) + 1
        out.summary = f"{turns} turns to Kiro model {kreq.kiro_model_id}, {len(tools)} tools" + (
            ", thinking" if kreq.thinking else ""
        )

    def retried(self, event: UpstreamRetried) -> None:
        self.outcome.retries += 1

    def first_byte(self, *, streaming: bool) -> None:
        out = self.outcome
        out.first_byte_ms = self.elapsed_ms()
        if streaming:
            out.streamed = True
            self.publish(ResponseStarted(self.key, self.request_id, out.first_byte_ms))

    def answered(self, usage: TurnUsage, preview: str) -> None:
        out = self.outcome
        out.input_tokens = usage.input_tokens
        out.output_tokens = usage.output_tokens
        out.credits = usage.credits
        out.response_preview = preview

    def failed(self, error: GatewayError) -> None:
        """The first failure is the one recorded."""
        self.ended(error.kind, error.message)

    def ended(self, kind: str, message: str) -> None:
        if self.outcome.error_kind is None:
            self.outcome.error, self.outcome.error_kind = message, kind

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
                outcome=replace(self.outcome),
                client_address=self.client_address,
            )
        )
