"""The relay: one converted request -> Kiro -> the caller's dialect, streamed or collected, in one loop.

Kiro's answer arrives as typed events, a list per network chunk (:class:`UpstreamStream`). The same loop
feeds them to the dialect's builder whether the client streams or not: streamed, what each chunk produced
is written at once; collected, the builder accumulates those very outputs into the body. Upstream errors
before the first byte surface as real HTTP statuses (the client awaits Kiro's first chunk before
answering). After the stream has begun, an error becomes the API's own stream error event, and a stream cut
upstream never ends as if it had finished normally. A client disconnect cancels the handler
(``handler_cancellation``), which closes the upstream response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..protocol.errors import ContextTooLong, GatewayError, UpstreamError
from ..protocol.kiro_events import KiroEvent, TextEvent
from ..protocol.kiro_payload import KiroRequest
from ..protocol.sse import json_text
from ..protocol.turn import TurnDriven, TurnParams
from ..upstream.kiro_client import KiroClient, UpstreamStream
from ..upstream.signals import UpstreamSignal
from .accounts import Account, AccountsRegistry
from .dialects import Dialect
from .exchange import Exchange
from .keys import EXCHANGE, IDENTITY, SERVICE

log = logging.getLogger("kiro_tray.gateway")

PREVIEW_CHARS = 600
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
Write = Callable[[bytes], Awaitable[None]]


def _params(kreq: KiroRequest) -> TurnParams:
    return TurnParams(
        model=kreq.model,
        input_tokens=kreq.input_tokens,
        context_window=kreq.context_window,
        tool_names=kreq.tool_names,
        thinking=kreq.thinking,
        stop_sequences=kreq.stop_sequences,
        max_tokens=kreq.max_tokens,
        include_usage=kreq.include_usage,
    )


def _extra_headers(kreq: KiroRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    if kreq.dropped_tools:
        headers["x-kiro-tray-dropped-tools"] = ",".join(kreq.dropped_tools)
    if kreq.repairs:
        headers["x-kiro-tray-repairs"] = ",".join(kreq.repairs)
    return headers


class _Turn:
    """Kiro's events through one builder: the first chunk apart (its failure can still be a real status),
    then the one loop for every other chunk."""

    __slots__ = ("_preview", "_size", "builder", "pending", "upstream")

    def __init__(self, upstream: UpstreamStream, builder: TurnDriven) -> None:
        self.upstream = upstream
        self.builder = builder
        self.pending: GatewayError | None = None
        self._preview: list[str] = []
        self._size = 0

    @property
    def preview(self) -> str:
        return "".join(self._preview)[:PREVIEW_CHARS]

    def _feed(self, events: list[KiroEvent]) -> tuple[bytes, GatewayError | None]:
        """What one chunk's events produced, and the failure that stopped them."""
        builder = self.builder
        out = bytearray()
        try:
            for event in events:
                if self._size < PREVIEW_CHARS and isinstance(event, TextEvent):
                    self._preview.append(event.content)
                    self._size += len(event.content)
                out += builder.feed(event)
                if builder.done:
                    break
        except GatewayError as exc:
            return bytes(out), exc
        return bytes(out), None

    async def first(self) -> bytes:
        """The first chunk's output; raises when Kiro failed before saying anything (or, collecting, at
        all): the client then gets a real status, which it may retry, not an error inside a 200."""
        events: list[KiroEvent] = await anext(self.upstream, [])
        data, error = self._feed(events)
        if error is not None and not data:
            raise error
        self.pending = error
        return data

    async def rest(self, write: Write | None) -> tuple[bytes, GatewayError | None]:
        """Every further chunk, written as it comes when streaming; then the builder's tail, or the
        failure that ended the turn."""
        builder = self.builder
        try:
            if self.pending is not None:
                raise self.pending
            if not builder.done:
                async for events in self.upstream:
                    data, error = self._feed(events)
                    if data and write is not None:
                        await write(data)
                    if error is not None:
                        raise error
                    if builder.done:
                        break
            return builder.finish(), None
        except GatewayError as exc:
            return b"", exc
        except (ConnectionError, asyncio.CancelledError):
            raise  # the client left, or the gateway stops: the caller records it
        except Exception as exc:
            # With a 200 already on the wire a bug must still end as this API's error event, never as a
            # second HTTP response written into the stream.
            log.exception("unexpected error relaying a turn")
            return b"", GatewayError(f"Internal gateway error ({type(exc).__name__}); see the Kiro Tray log.")


async def relay(request: web.Request, dialect: Dialect, kreq: KiroRequest) -> web.StreamResponse:
    service = request.app[SERVICE]
    exchange = request[EXCHANGE]
    exchange.describe(kreq)
    log.debug("request %s: %s", exchange.request_id, exchange.outcome.summary)
    for rule in kreq.repairs:
        log.debug("request %s: history repair %s", exchange.request_id, rule)
    client = service.client
    if client is None:
        raise UpstreamError("The gateway is not running.")
    task = asyncio.current_task()
    if task is not None:
        service.track_stream(task)
    try:
        upstream = await _open(service.accounts, client, kreq, request[IDENTITY].tenant_token, exchange)
    except ContextTooLong as exc:
        raise exc.sized(kreq.input_tokens, kreq.context_window) from exc
    async with upstream:
        turn = _Turn(upstream, dialect.builder(_params(kreq), collect=not kreq.stream))
        try:
            first = await turn.first()
            if kreq.stream:
                return await _stream(request, dialect, kreq, turn, first, exchange)
            return await _collect(kreq, turn, exchange)
        finally:
            exchange.answered(turn.builder.usage, turn.preview)


async def _open(
    accounts: AccountsRegistry,
    client: KiroClient,
    kreq: KiroRequest,
    tenant_token: str | None,
    exchange: Exchange,
) -> UpstreamStream:
    """The account choice and failover, in this one place: an account fault before Kiro's first byte
    moves the same request to the next account the registry leases (the outcome's ``hops`` name each
    account left and why); anything else, or no account left, ends the request."""
    tried: list[Account] = []
    while True:
        lease = await accounts.lease(tenant_token, tried)
        exchange.outcome.account = lease.account.name
        heard: list[UpstreamSignal] = []
        try:
            upstream = await client.open_stream(
                kreq.payload,
                lease.account.tokens,
                model=kreq.kiro_model_id,
                stream=kreq.stream,
                retried=exchange.retried,
                classified=heard.append,
                failover=lease.spare,
            )
        except GatewayError as exc:
            signal = heard[-1] if heard else None
            if signal is None or not accounts.report(lease, exc, signal):
                raise
            log.info(
                "request %s: account %s failed (%s), trying another",
                exchange.request_id,
                lease.account.name,
                signal.name,
            )
            exchange.outcome.hops += (f"{lease.account.name}: {signal.name}",)
            tried.append(lease.account)
        else:
            accounts.report(lease, None, None)
            return upstream
        finally:
            lease.release()


async def _collect(kreq: KiroRequest, turn: _Turn, exchange: Exchange) -> web.Response:
    _, failure = await turn.rest(None)
    _log_end(exchange, "answer", failure)
    if failure is not None:
        raise failure
    body = turn.builder.result()
    exchange.first_byte(streaming=False)
    headers = {**_extra_headers(kreq), "x-request-id": exchange.request_id}
    credits = turn.builder.usage.credits
    if credits is not None:
        headers["x-kiro-credits"] = f"{credits:g}"
    data = json_text(body).encode("utf-8", "replace")  # a lone surrogate from Kiro must not crash this
    return web.Response(body=data, headers=headers, content_type="application/json", charset="utf-8")


async def _stream(
    request: web.Request, dialect: Dialect, kreq: KiroRequest, turn: _Turn, first: bytes, exchange: Exchange
) -> web.StreamResponse:
    service = request.app[SERVICE]
    builder = turn.builder
    response = web.StreamResponse(headers={**SSE_HEADERS, **_extra_headers(kreq)})
    response.headers["x-request-id"] = exchange.request_id
    await response.prepare(request)
    await response.write(builder.start() + first)
    exchange.first_byte(streaming=True)
    last_write = time.monotonic()

    async def write(data: bytes) -> None:
        nonlocal last_write
        await response.write(data)
        last_write = time.monotonic()

    pinger = None
    if dialect.ping is not None:
        pinger = asyncio.create_task(_ping(response, dialect.ping, service.ping_interval, lambda: last_write))
    try:
        tail, failure = await turn.rest(write)
        if failure is not None:
            exchange.failed(failure)
            tail = builder.fail(failure)
        _log_end(exchange, "stream", failure)
        await response.write(tail)
        await response.write_eof()
    except asyncio.CancelledError:
        if service.stopping:
            exchange.ended("shutdown", "The gateway stopped during the stream.")
            await _write_quietly(response, builder.fail(UpstreamError("The gateway is shutting down.")))
        else:
            exchange.ended("client_disconnected", "The client disconnected.")
            exchange.status = 499
        raise
    except ConnectionError:
        exchange.ended("client_disconnected", "The client disconnected.")
        exchange.status = 499
    finally:
        if pinger is not None:
            pinger.cancel()
    return response


def _log_end(exchange: Exchange, what: str, failure: GatewayError | None) -> None:
    how = f"with {failure.kind}" if failure is not None else "normally"
    log.debug("request %s: %s ended %s", exchange.request_id, what, how)


async def _ping(
    response: web.StreamResponse, ping: bytes, interval: float, last_write: Callable[[], float]
) -> None:
    """Keep-alive events while Kiro is silent, for dialects that have one."""
    try:
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - last_write() >= interval:
                await response.write(ping)
    except (ConnectionError, RuntimeError):
        return  # the client left; the relay itself notices and records it


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client is already gone; nothing more can be said to it
