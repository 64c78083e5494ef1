"""Shared checks for the fault, soak, fuzz and security suites: raw calls, envelopes, streams, leaks.

Calls go over real HTTP with ``httpx`` so the exact bytes are visible: the error envelope of each API,
and every SSE event of a stream (a cut stream must never end like a finished one).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from kiro_tray.gateway.dialects import CHAT, MESSAGES
from kiro_tray.protocol.errors import GatewayError

from ..harness import Gateway

Api = Literal["openai", "anthropic"]
DIALECTS_BY_API = {"openai": CHAT, "anthropic": MESSAGES}
MODEL = "claude-sonnet-4-5"
PATHS: dict[Api, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def headers_for(api: Api, key: str) -> dict[str, str]:
    if api == "openai":
        return {"Authorization": f"Bearer {key}"}
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def chat_body(api: Api, stream: bool, text: str = "hello") -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
    if api == "anthropic":
        body["max_tokens"] = 200
    return body


@dataclass
class Outcome:
    """What the client saw: status, headers, and either the JSON body or the SSE events."""

    status: int
    headers: httpx.Headers
    elapsed: float
    body: Any = None
    events: list[tuple[str, Any]] = field(default_factory=list)  # (event name or "", data)

    @property
    def streamed(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON (strict parsers such as JavaScript's reject it)")


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` without Python's extensions: NaN and Infinity are errors, as in every other parser."""
    return json.loads(text, parse_constant=_not_json)


def parse_sse(lines: list[str]) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
            events.append((name, data if data == "[DONE]" else strict_json(data)))
        elif not line:
            name = ""
    return events


def call(
    gw: Gateway,
    api: Api,
    stream: bool,
    *,
    text: str = "hello",
    body: dict[str, Any] | None = None,
    timeout: float = 15.0,
) -> Outcome:
    """One chat call; a hang becomes an ``httpx`` timeout (a test failure), never a stuck suite."""
    payload = body if body is not None else chat_body(api, stream, text)
    started = time.monotonic()
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("POST", gw.url + PATHS[api], json=payload, headers=headers_for(api, gw.key)) as resp,
    ):
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            events = parse_sse(list(resp.iter_lines()))
            return Outcome(resp.status_code, resp.headers, time.monotonic() - started, events=events)
        resp.read()
        return Outcome(
            resp.status_code, resp.headers, time.monotonic() - started, body=strict_json(resp.content)
        )


# ---- envelopes and streams ------------------------------------------------------------------------


def error_message(api: Api, body: Any) -> str:
    """The message of an error envelope, after checking the envelope's exact shape for ``api``."""
    assert isinstance(body, dict), body
    if api == "openai":
        assert set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert isinstance(error["type"], str) and error["type"]
    else:
        assert set(body) == {"type", "error"} and body["type"] == "error", body
        error = body["error"]
        assert set(error) == {"type", "message"}, body
    assert isinstance(error["message"], str) and error["message"], body
    return str(error["message"])


def assert_envelope(api: Api, body: Any, error: type[GatewayError], needle: str = "") -> None:
    """``body`` is ``error``'s envelope in ``api``'s format, and its message mentions ``needle``."""
    message = error_message(api, body)
    expected = DIALECTS_BY_API[api].error_body(error("probe"))
    assert body["error"]["type"] == expected["error"]["type"], body
    if api == "openai":
        assert body["error"]["code"] == error.code, body
    assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"


def status_of(error: type[GatewayError], api: Api) -> int:
    return DIALECTS_BY_API[api].error_status(error("probe"))


def assert_error(out: Outcome, api: Api, error: type[GatewayError], needle: str = "") -> None:
    """The call failed before its response began: a real HTTP status and a JSON envelope."""
    assert not out.streamed, out.events
    assert out.status == status_of(error, api), (out.status, out.body)
    assert_envelope(api, out.body, error, needle)


def assert_stream_failed(out: Outcome, api: Api, error: type[GatewayError], needle: str = "") -> None:
    """A stream that began and then failed: one error event last, and nothing that looks finished."""
    assert out.status == 200 and out.streamed, (out.status, out.body)
    assert out.events, "an empty stream"
    datas = [data for _, data in out.events]
    if api == "openai":
        assert "[DONE]" not in datas, "a failed stream ended with [DONE]"
        *chunks, last = datas
        for chunk in chunks:
            assert "error" not in chunk
            assert all(choice.get("finish_reason") is None for choice in chunk.get("choices", [])), chunk
        assert_envelope(api, last, error, needle)
    else:
        names = [name for name, _ in out.events]
        assert names[-1] == "error", names
        assert "message_stop" not in names and "message_delta" not in names, names
        assert_envelope(api, out.events[-1][1], error, needle)


def assert_failed(out: Outcome, api: Api, stream: bool, error: type[GatewayError], needle: str = "") -> None:
    """Failed in the right way for the mode: a stream error event, or a real status when not streamed."""
    if stream:
        assert_stream_failed(out, api, error, needle)
    else:
        assert_error(out, api, error, needle)


def streamed_text(out: Outcome, api: Api) -> str:
    if api == "openai":
        return "".join(
            choice["delta"].get("content") or ""
            for _, chunk in out.events
            if isinstance(chunk, dict)
            for choice in chunk.get("choices", [])
        )
    return "".join(
        data["delta"].get("text", "")
        for name, data in out.events
        if name == "content_block_delta" and data["delta"]["type"] == "text_delta"
    )


def assert_success(out: Outcome, api: Api, stream: bool, text: str | None = None) -> None:
    """A complete answer: a normal finish reason, and ``text`` when given."""
    assert out.status == 200, (out.status, out.body)
    if stream:
        assert out.streamed
        if api == "openai":
            assert out.events[-1][1] == "[DONE]"
            reasons = [c["finish_reason"] for _, d in out.events if isinstance(d, dict) for c in d["choices"]]
            assert reasons[-1] == "stop"
        else:
            names = [name for name, _ in out.events]
            assert names[-1] == "message_stop" and "error" not in names
            delta = next(d for n, d in out.events if n == "message_delta")
            assert delta["delta"]["stop_reason"] == "end_turn"
        said = streamed_text(out, api)
    elif api == "openai":
        assert out.body["choices"][0]["finish_reason"] == "stop"
        said = out.body["choices"][0]["message"]["content"]
    else:
        assert out.body["stop_reason"] == "end_turn"
        said = "".join(b["text"] for b in out.body["content"] if b["type"] == "text")
    if text is not None:
        assert said == text


# ---- leaks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """What a finished request must give back. Idle keep-alive connections to the fake are pooled on
    purpose; each holds two descriptors (both ends live in this process) and one server task, so those
    are subtracted: what remains must return to its value before the fault."""

    fds: int
    tasks: int
    acquired: int  # upstream connections checked out of the pool
    fake_connections: int  # the fake's open connections that are not idle in the pool
    fake_streams: int
    active_streams: int
    in_flight: int


def resources(gw: Gateway) -> Resources:
    async def count() -> tuple[int, int, int, int, int, int, int]:
        session = gw.service.session
        assert session is not None and session.connector is not None
        connector = session.connector
        idle = sum(len(conns) for conns in connector._conns.values())  # type: ignore[attr-defined]
        metrics = gw.service.metrics
        return (
            idle,
            len(asyncio.all_tasks()) - idle,
            len(connector._acquired),  # type: ignore[attr-defined]
            gw.fake.open_connections - idle,
            gw.fake.open_streams,
            metrics.active_streams,
            metrics.in_flight,
        )

    idle, tasks, acquired, fake_connections, fake_streams, active, in_flight = gw.run(count())
    fds = len(os.listdir("/proc/self/fd")) - 2 * idle
    return Resources(fds, tasks, acquired, fake_connections, fake_streams, active, in_flight)


def client_connections(gw: Gateway) -> int:
    """Connections from clients to the gateway still open on its side (a closed client socket is
    noticed by the server loop a moment later)."""
    runner = gw.service._runner
    server = runner.server if runner is not None else None
    return len(server.connections) if server is not None else 0


def settled_resources(gw: Gateway) -> Resources:
    """The baseline: taken once the clients' connections are closed on the gateway's side too."""
    assert wait_until(lambda: client_connections(gw) == 0 and resources(gw).fake_connections == 0)
    return resources(gw)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition the server thread changes (no event crosses the threads); False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assert_no_leaks(gw: Gateway, baseline: Resources, timeout: float = 5.0) -> None:
    """Everything returns to ``baseline`` (closing sockets settles asynchronously, hence the wait)."""
    wait_until(lambda: resources(gw) == baseline, timeout)
    now = resources(gw)
    assert now == baseline, f"leaked: before {baseline}, after {now}"


class LoopErrors:
    """Collects what the server loop reports to its exception handler (a task's exception nobody
    retrieved, a callback that raised): a crash that a client never sees, but a crash."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.seen: list[str] = []
        gw.thread.call(gw.thread.loop.set_exception_handler, self._handle)

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen.append(f"{context.get('message')}: {context.get('exception')!r}")

    def check(self) -> None:
        gc.collect()  # a task whose exception was never retrieved reports it when collected
        self.gw.thread.call(lambda: None)  # let the loop run anything that was scheduled
        assert not self.seen, self.seen
