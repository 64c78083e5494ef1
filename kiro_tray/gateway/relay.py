"""The relay: one converted request -> Kiro -> the caller's API, streamed or collected.

Upstream errors before the first byte surface as real HTTP statuses (the client awaits Kiro's first chunk
before answering). After the stream has begun, an error becomes the API's own stream error event, and a
stream cut upstream never ends as if it had finished normally. A client disconnect cancels the handler
(``handler_cancellation``), which closes the upstream response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import aiohttp
from aiohttp import web

from ..errors import Api, GatewayError, UpstreamError
from ..protocol.anthropic_stream import AnthropicCollector, AnthropicStream
from ..protocol.eventstream import EventStreamError
from ..protocol.kiro_events import KiroEvent, KiroEventDecoder, TextEvent
from ..protocol.kiro_payload import KiroRequest
from ..protocol.openai_stream import OpenAICollector, OpenAIStream
from ..protocol.sse import json_text
from ..protocol.turn import TurnParams
from ..store import RequestRecord
from ..upstream.kiro_client import UpstreamStream
from .keys import IDENTITY, RECORD, SERVICE, STARTED

log = logging.getLogger("kiro_tray.gateway")

PREVIEW_CHARS = 600
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


StreamBuilder = AnthropicStream | OpenAIStream


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


def _describe(record: RequestRecord, kreq: KiroRequest) -> None:
    record.model = kreq.model
    record.stream = kreq.stream
    record.repairs = kreq.repairs
    record.dropped_tools = kreq.dropped_tools
    record.input_tokens = kreq.input_tokens
    state = kreq.payload.get("conversationState", {})
    current = state.get("currentMessage", {}).get("userInputMessage", {})
    tools = current.get("userInputMessageContext", {}).get("tools", [])
    record.summary = (
        f"{len(state.get('history', [])) + 1} turns to Kiro model {kreq.kiro_model_id}, {len(tools)} tools"
        + (", thinking" if kreq.thinking else "")
    )
    for rule in kreq.repairs:
        log.debug("request %s: history repair %s", record.request_id, rule)


def _extra_headers(kreq: KiroRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    if kreq.dropped_tools:
        headers["x-kiro-tray-dropped-tools"] = ",".join(kreq.dropped_tools)
    if kreq.repairs:
        headers["x-kiro-tray-repairs"] = ",".join(kreq.repairs)
    return headers


class _Preview:
    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, events: Iterable[KiroEvent]) -> None:
        if self.size >= PREVIEW_CHARS:
            return
        for event in events:
            if isinstance(event, TextEvent):
                self.parts.append(event.content)
                self.size += len(event.content)

    @property
    def text(self) -> str:
        return "".join(self.parts)[:PREVIEW_CHARS]


async def relay(request: web.Request, api: Api, kreq: KiroRequest) -> web.StreamResponse:
    service = request.app[SERVICE]
    record = request[RECORD]
    _describe(record, kreq)
    tokens = service.token_manager_for(request[IDENTITY].tenant_token)
    client = service.client
    if client is None:
        raise UpstreamError("The gateway is not running.")
    task = asyncio.current_task()
    if task is not None:
        service.track_stream(task)
    try:
        upstream = await client.open_stream(
            kreq.payload, tokens, model=kreq.kiro_model_id, stream=kreq.stream
        )
    except GatewayError as exc:
        service.note_error(exc)
        raise
    record.retries = upstream.retries
    async with upstream:
        if kreq.stream:
            return await _stream(request, api, kreq, upstream, record)
        return await _collect(request, api, kreq, upstream, record)


class _Fed:
    """What one network chunk's events produced: bytes to write, and the failure that stopped them."""

    __slots__ = ("data", "error")

    def __init__(self, data: bytes, error: GatewayError | None) -> None:
        self.data = data
        self.error = error


def _feed(builder: StreamBuilder, events: list[KiroEvent]) -> _Fed:
    out = bytearray()
    try:
        for event in events:
            out += builder.feed(event)
            if builder.done:
                break
    except GatewayError as exc:
        return _Fed(bytes(out), exc)
    return _Fed(bytes(out), None)


async def _stream(
    request: web.Request, api: Api, kreq: KiroRequest, upstream: UpstreamStream, record: RequestRecord
) -> web.StreamResponse:
    service = request.app[SERVICE]
    params = _params(kreq)
    builder: AnthropicStream | OpenAIStream = (
        AnthropicStream(params) if api == "anthropic" else OpenAIStream(params)
    )
    decoder = KiroEventDecoder()
    preview = _Preview()
    response = web.StreamResponse(headers={**SSE_HEADERS, **_extra_headers(kreq)})
    response.headers["x-request-id"] = record.request_id
    try:
        events = decoder.feed(upstream.first_chunk)
    except EventStreamError as exc:
        raise UpstreamError(f"Kiro sent a corrupt event stream: {exc}.") from exc
    preview.add(events)
    fed = _feed(builder, events)
    if fed.error is not None and not fed.data:
        # Kiro failed before saying anything: answer with a real status (clients retry a 529/502, they do
        # not retry an error event inside a 200 stream).
        service.note_error(fed.error)
        raise fed.error
    await response.prepare(request)
    await response.write(builder.start() + fed.data)
    record.first_byte_ms = round((time.monotonic() - request[STARTED]) * 1000, 2)
    service.metrics.stream_opened()
    last_write = time.monotonic()
    pinger: asyncio.Task[None] | None = None
    if isinstance(builder, AnthropicStream):

        async def ping() -> None:
            interval = service.ping_interval
            try:
                while True:
                    await asyncio.sleep(interval)
                    if time.monotonic() - last_write >= interval:
                        await response.write(builder.ping())
            except (ConnectionError, RuntimeError):
                return  # the client left; the relay itself notices and records it

        pinger = asyncio.create_task(ping())
    failure: GatewayError | None = None
    try:
        try:
            if fed.error is not None:
                raise fed.error
            if not builder.done:
                async for chunk in upstream:
                    events = decoder.feed(chunk)
                    preview.add(events)
                    fed = _feed(builder, events)
                    if fed.data:
                        await response.write(fed.data)
                        last_write = time.monotonic()
                    if fed.error is not None:
                        raise fed.error
                    if builder.done:
                        break
            if not builder.done and decoder.pending:
                raise UpstreamError("Kiro's stream ended in the middle of an event frame (connection cut).")
            tail = builder.finish()
        except GatewayError as exc:
            failure = exc
        except EventStreamError as exc:
            failure = UpstreamError(f"Kiro sent a corrupt event stream: {exc}.")
        except aiohttp.ClientError as exc:
            failure = UpstreamError(f"The connection to Kiro broke mid-stream: {type(exc).__name__}.")
        except Exception as exc:
            # The 200 is already on the wire: a bug must still end as this API's error event, never as a
            # second HTTP response written into the stream.
            log.exception("unexpected error relaying %s", record.request_id)
            failure = GatewayError(f"Internal gateway error ({type(exc).__name__}); see the Kiro Tray log.")
        if failure is not None:
            tail = builder.fail(failure)
        await response.write(tail)
        await response.write_eof()
    except asyncio.CancelledError:
        if service.stopping:
            record.error, record.error_kind = "The gateway stopped during the stream.", "shutdown"
            await _write_quietly(response, builder.fail(UpstreamError("The gateway is shutting down.")))
        else:
            record.error, record.error_kind = "The client disconnected.", "client_disconnected"
            record.status = 499
        raise
    except ConnectionError:
        record.error, record.error_kind, record.status = (
            "The client disconnected.",
            "client_disconnected",
            499,
        )
    finally:
        if pinger is not None:
            pinger.cancel()
        service.metrics.stream_closed()
        _account(record, builder, preview, failure)
        if failure is not None:
            service.note_error(failure)
    return response


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client is already gone; nothing more can be said to it


def _account(
    record: RequestRecord,
    builder: AnthropicStream | OpenAIStream | AnthropicCollector | OpenAICollector,
    preview: _Preview,
    failure: GatewayError | None,
) -> None:
    usage = builder.usage
    record.input_tokens = usage.input_tokens
    record.output_tokens = usage.output_tokens
    record.credits = usage.credits
    record.response_preview = preview.text
    if failure is not None:
        record.error, record.error_kind = failure.message, failure.kind


async def _collect(
    request: web.Request, api: Api, kreq: KiroRequest, upstream: UpstreamStream, record: RequestRecord
) -> web.Response:
    params = _params(kreq)
    collector: AnthropicCollector | OpenAICollector = (
        AnthropicCollector(params) if api == "anthropic" else OpenAICollector(params)
    )
    decoder = KiroEventDecoder()
    preview = _Preview()
    failure: GatewayError | None = None
    try:
        events = decoder.feed(upstream.first_chunk)
        for event in events:
            collector.feed(event)
        preview.add(events)
        if not collector.done:
            async for chunk in upstream:
                events = decoder.feed(chunk)
                preview.add(events)
                for event in events:
                    collector.feed(event)
                    if collector.done:
                        break
                if collector.done:
                    break
        if not collector.done and decoder.pending:
            raise UpstreamError("Kiro's stream ended in the middle of an event frame (connection cut).")
        body = collector.result()
    except EventStreamError as exc:
        failure = UpstreamError(f"Kiro sent a corrupt event stream: {exc}.")
    except aiohttp.ClientError as exc:
        failure = UpstreamError(f"The connection to Kiro broke: {type(exc).__name__}.")
    except GatewayError as exc:
        failure = exc
    finally:
        _account(record, collector, preview, failure)
    if failure is not None:
        request.app[SERVICE].note_error(failure)
        raise failure
    record.first_byte_ms = round((time.monotonic() - request[STARTED]) * 1000, 2)
    headers = {**_extra_headers(kreq), "x-request-id": record.request_id}
    if record.credits is not None:
        headers["x-kiro-credits"] = f"{record.credits:g}"
    data = json_text(body).encode("utf-8", "replace")  # a lone surrogate from Kiro must not crash this
    return web.Response(body=data, headers=headers, content_type="application/json", charset="utf-8")
