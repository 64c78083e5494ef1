"""Fault injection against the fake Kiro, for both APIs, streamed and not.

For every fault: the client gets success or the right error in its API's format within the configured
timeout (elapsed time is bounded both ways), never a hang and never a stream that looks finished when it
was cut; the gateway keeps serving (a follow-up call succeeds); and nothing leaks: file descriptors,
server-loop tasks, upstream connections, the fake's open streams, the gateway's stream and in-flight
counters all return to what they were, and the server loop reports no unhandled error.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.errors import (
    CredentialsError,
    RateLimited,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from kiro_tray.protocol.eventstream import encode_event
from kiro_tray.store import RequestRecord

from ..fake_kiro.replies import (
    Corrupt,
    Delay,
    Disconnect,
    ExceptionFrame,
    Raw,
    Reply,
    Stall,
    Text,
    error_reply,
    paced_text_reply,
    text_reply,
    throttle_reply,
)
from ..harness import ALLOW_REFRESH_FAILURES, ALLOW_RETRIES, Gateway, start_gateway, stop_gateway
from .checks import (
    PATHS,
    Api,
    LoopErrors,
    Outcome,
    Resources,
    assert_error,
    assert_failed,
    assert_no_leaks,
    assert_success,
    call,
    chat_body,
    error_message,
    headers_for,
    settled_resources,
    strict_json,
    wait_until,
)

MODES = [
    pytest.param(api, stream, id=f"{api}-{'stream' if stream else 'json'}")
    for api in ("openai", "anthropic")
    for stream in (True, False)
]
#: Slack on top of a configured timeout: scheduling, retries' tiny backoff, a loaded 2-core CI machine.
#: The upper bounds guard against hangs; every wrong behaviour they catch takes longer than 10 s (the
#: harness's default timeouts) or is caught by a count (attempts, refresh calls) instead.
SLACK = 5.0


@dataclass
class Rig:
    gw: Gateway
    baseline: Resources
    loop_errors: LoopErrors

    def recovered(self, api: Api, stream: bool) -> None:
        """The gateway keeps serving, then nothing is left over from the fault."""
        assert_success(call(self.gw, api, stream, text="after"), api, stream, "You said: after")
        assert_no_leaks(self.gw, self.baseline)
        self.loop_errors.check()


def last_record(gw: Gateway) -> RequestRecord:
    """The latest request's record, once finished (a stream's ends just after its last byte is sent)."""
    record = list(gw.service.store)[-1]
    assert wait_until(lambda: record.finished)
    return record


@pytest.fixture
def rig(gateway: Gateway) -> Iterator[Rig]:
    # Tests that reload credentials hand the same refresh token in again: keep it valid.
    gateway.thread.call(setattr, gateway.account, "rotate", False)
    for api in ("openai", "anthropic"):  # token refreshed, a pooled connection: the steady state
        for stream in (True, False):
            assert_success(call(gateway, api, stream, text="warm"), api, stream)
    yield Rig(gateway, settled_resources(gateway), LoopErrors(gateway))


# ---- the checks themselves can fail -----------------------------------------------------------------


def test_the_leak_check_sees_a_held_connection_and_a_stray_task(rig: Rig) -> None:
    async def hold() -> tuple[Any, asyncio.Task[None]]:
        session = rig.gw.service.session
        assert session is not None
        response = await session.get(rig.gw.fake.url + "/getUsageLimits")  # checked out, never released
        return response, asyncio.get_running_loop().create_task(asyncio.sleep(30))

    response, task = rig.gw.run(hold())
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_leaks(rig.gw, rig.baseline, timeout=0.3)
    rig.gw.thread.call(task.cancel)
    rig.gw.thread.call(response.close)
    assert_no_leaks(rig.gw, rig.baseline)


def test_the_loop_check_sees_an_exception_nobody_retrieved(rig: Rig) -> None:
    async def lose() -> None:
        async def boom() -> None:
            raise RuntimeError("lost")

        task = asyncio.get_running_loop().create_task(boom())
        await asyncio.wait([task])

    rig.gw.run(lose())
    with pytest.raises(AssertionError, match="never retrieved"):
        rig.loop_errors.check()
    rig.loop_errors.seen.clear()


# ---- mid-stream faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "stream"), MODES)
def test_upstream_disconnect_mid_stream(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(Reply([Text("half an ans"), Disconnect()]))
    out = call(rig.gw, api, stream)
    assert_failed(out, api, stream, UpstreamError, "connection to Kiro broke")
    assert out.elapsed < SLACK
    rig.recovered(api, stream)


@pytest.mark.gateway_settings(stream_read_timeout=0.5)
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_upstream_stall_mid_stream_times_out(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(Reply([Text("thinking about it"), Stall()]))
    out = call(rig.gw, api, stream)
    assert_failed(out, api, stream, UpstreamTimeout, "silent")
    assert 0.5 <= out.elapsed < 0.5 + SLACK
    rig.recovered(api, stream)


@ALLOW_RETRIES
@pytest.mark.gateway_settings(first_token_timeout=0.5)  # the warm-up answers beat it, even under load
@pytest.mark.parametrize(
    "silence",
    [Reply([Stall()]), Reply([Delay(10), Text("too late")])],
    ids=["headers-then-nothing", "no-headers"],
)
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_upstream_silent_before_first_byte_is_retried_then_504(
    rig: Rig, api: Api, stream: bool, silence: Reply
) -> None:
    rig.gw.enqueue(*[silence] * 3)  # max_retries=2: three attempts
    out = call(rig.gw, api, stream)
    assert_error(out, api, UpstreamTimeout, "did not start answering")
    assert 1.5 <= out.elapsed < 1.5 + SLACK
    assert len(rig.gw.fake.requests) == 4 + 3  # the warm-up calls, then three attempts
    rig.recovered(api, stream)


@pytest.mark.gateway_settings(non_stream_timeout=0.8)
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_slow_drip_hits_the_non_streaming_deadline(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(paced_text_reply(75, 0.2))  # every gap is short; the whole is 15 s
    out = call(rig.gw, api, False)
    assert_error(out, api, UpstreamTimeout, "non-streaming timeout")
    assert 0.8 <= out.elapsed < 0.8 + SLACK
    rig.recovered(api, False)


@pytest.mark.parametrize(("api", "stream"), MODES)
def test_corrupt_frame(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(Reply([Text("fine so far"), Delay(0.05), Corrupt(), Text("never seen")]))
    out = call(rig.gw, api, stream)
    assert_failed(out, api, stream, UpstreamError, "corrupt")
    assert out.elapsed < SLACK
    rig.recovered(api, stream)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "reply",
    [
        Reply([Text("fine so far"), Corrupt()]),  # one write: Kiro's first chunk holds the bad frame
        Reply([Raw(b"<html><body>Proxy login required</body></html>")]),  # a 200 that is no event stream
    ],
    ids=["corrupt-frame", "html"],
)
def test_corrupt_first_chunk_is_a_502(rig: Rig, api: Api, reply: Reply) -> None:
    rig.gw.enqueue(reply)
    out = call(rig.gw, api, True)
    assert out.status != 500, out.body
    assert_error(out, api, UpstreamError, "corrupt")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_200_that_is_no_event_stream_is_a_502_when_collected(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([Raw(b"<html><body>Proxy login required</body></html>")]))
    assert_error(call(rig.gw, api, False), api, UpstreamError, "corrupt")
    rig.recovered(api, False)


@pytest.mark.parametrize(("api", "stream"), MODES)
def test_exception_frame_mid_stream(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(Reply([Text("partial"), Delay(0.05), ExceptionFrame("InternalServerException", "kaput")]))
    out = call(rig.gw, api, stream)
    assert_failed(out, api, stream, UpstreamError, "kaput")
    rig.recovered(api, stream)


@pytest.mark.parametrize(("api", "stream"), MODES)
def test_throttling_exception_frame_mid_stream_is_overloaded(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(Reply([Text("partial"), Delay(0.05), ExceptionFrame("ThrottlingException", "slow down")]))
    out = call(rig.gw, api, stream)
    assert_failed(out, api, stream, UpstreamOverloaded, "slow down")
    rig.recovered(api, stream)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_exception_frame_before_any_content_is_a_real_status(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([ExceptionFrame("ThrottlingException", "slow down")]))
    out = call(rig.gw, api, True)
    assert_error(out, api, UpstreamOverloaded, "slow down")


# ---- HTTP errors before the first byte ------------------------------------------------------------


@ALLOW_RETRIES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_429_storm_ends_in_429_with_retry_after(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(*[throttle_reply()] * 3)
    sent = len(rig.gw.fake.requests)
    out = call(rig.gw, api, stream)
    assert_error(out, api, RateLimited, "throttling")
    assert int(out.headers["retry-after"]) >= 1
    assert len(rig.gw.fake.requests) - sent == 3  # max_retries=2: one try, two retries, no more
    assert out.elapsed < SLACK
    rig.recovered(api, stream)


@pytest.mark.parametrize(("api", "stream"), MODES)
def test_long_retry_after_is_passed_on_without_waiting(rig: Rig, api: Api, stream: bool) -> None:
    slow_down = error_reply(429, "Too many requests, please wait before trying again.")
    slow_down.headers["Retry-After"] = "120"
    rig.gw.enqueue(slow_down)
    sent = len(rig.gw.fake.requests)
    out = call(rig.gw, api, stream)
    assert_error(out, api, RateLimited, "throttling")
    assert out.headers["retry-after"] == "120"
    assert len(rig.gw.fake.requests) - sent == 1
    assert out.elapsed < SLACK
    rig.recovered(api, stream)


@ALLOW_RETRIES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_5xx_then_success(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(error_reply(500, "Internal"), error_reply(503, "Unavailable"), text_reply("recovered"))
    out = call(rig.gw, api, stream)
    assert_success(out, api, stream, "recovered")
    assert last_record(rig.gw).retries == 2
    rig.recovered(api, stream)


@ALLOW_RETRIES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_5xx_storm_is_502(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.enqueue(*[error_reply(500, "Internal")] * 3)
    out = call(rig.gw, api, stream)
    assert_error(out, api, UpstreamError, "after 3 attempts")
    rig.recovered(api, stream)


# ---- the refresh endpoint ---------------------------------------------------------------------------


def expire_everything(gw: Gateway) -> None:
    """Kiro now rejects the gateway's access token (it still believes the token valid)."""
    assert gw.account is not None
    gw.thread.call(gw.account.expire_access_tokens)


@ALLOW_REFRESH_FAILURES
@pytest.mark.parametrize(
    ("api", "stream"),
    [pytest.param("openai", False, id="openai-json"), pytest.param("anthropic", True, id="anthropic-stream")],
)
def test_refresh_endpoint_down_while_the_token_still_works(rig: Rig, api: Api, stream: bool) -> None:
    """Graceful degradation: the refresh fails, the current access token keeps serving."""
    rig.gw.fake.auth.issued_ttl = 120  # inside the refresh margin: every call wants a refresh
    rig.gw.run(rig.gw.service.accounts.reset())
    assert_success(call(rig.gw, api, stream), api, stream)
    rig.gw.fake.auth.refresh_failure = "down"
    out = call(rig.gw, api, stream, text="degraded")
    assert_success(out, api, stream, "You said: degraded")
    assert out.elapsed < 1.5 + SLACK  # three refresh attempts, backoff 0.5 s + 1 s
    assert rig.gw.service.metrics.refresh_failures >= 1
    rig.gw.fake.auth.refresh_failure = None
    rig.recovered(api, stream)


@ALLOW_RETRIES
@ALLOW_REFRESH_FAILURES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_refresh_endpoint_down_and_the_token_dead(rig: Rig, api: Api, stream: bool) -> None:
    expire_everything(rig.gw)
    rig.gw.fake.auth.refresh_failure = "down"
    out = call(rig.gw, api, stream)
    assert out.status >= 400 and not out.streamed
    assert "refresh endpoint is unreachable" in str(out.body)
    assert 1.5 <= out.elapsed < 1.5 + SLACK
    rig.gw.fake.auth.refresh_failure = None
    rig.recovered(api, stream)


@ALLOW_RETRIES
@ALLOW_REFRESH_FAILURES
def test_refresh_endpoint_down_is_a_retryable_upstream_error(rig: Rig) -> None:
    api: Api = "anthropic"
    expire_everything(rig.gw)
    rig.gw.fake.auth.refresh_failure = "down"
    out = call(rig.gw, api, False)
    rig.gw.fake.auth.refresh_failure = None
    assert_error(out, api, UpstreamError, "unreachable")


@ALLOW_REFRESH_FAILURES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_refresh_invalid_grant(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.fake.auth.refresh_failure = "invalid_grant"
    rig.gw.run(rig.gw.service.accounts.reset())  # a fresh token manager: it must refresh first
    calls = rig.gw.fake.auth.refresh_calls
    out = call(rig.gw, api, stream)
    assert_error(out, api, CredentialsError, "log in to Kiro again")
    assert rig.gw.fake.auth.refresh_calls == calls + 1  # a dead grant is not retried
    assert out.elapsed < SLACK
    calls = rig.gw.fake.auth.refresh_calls
    again = call(rig.gw, api, stream)  # a dead grant fails fast: no refresh loop
    assert_error(again, api, CredentialsError, "log in to Kiro again")
    assert rig.gw.fake.auth.refresh_calls == calls
    health = httpx.get(rig.gw.url + "/health", timeout=5).json()
    assert health["status"] == "degraded" and health["credentials"]["state"] == "invalid"
    rig.gw.fake.auth.refresh_failure = None
    rig.gw.run(rig.gw.service.accounts.reset())  # the user logged in again
    rig.recovered(api, stream)


# ---- the network ------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@ALLOW_RETRIES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_connection_refused(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.restart_with(kiro_api_base_url=f"http://127.0.0.1:{closed_port()}")
    out = call(rig.gw, api, stream)
    assert_error(out, api, UpstreamError, "connection refused")
    assert "after 3 attempts" in str(out.body)
    assert out.elapsed < SLACK
    rig.gw.restart_with(kiro_api_base_url=rig.gw.fake.url)
    rig.recovered(api, stream)


@ALLOW_RETRIES
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_dns_failure(rig: Rig, api: Api, stream: bool) -> None:
    rig.gw.restart_with(kiro_api_base_url="http://kiro-tray-fault-test.invalid")
    out = call(rig.gw, api, stream)
    assert_error(out, api, UpstreamError, "DNS lookup failed for kiro-tray-fault-test.invalid")
    assert out.elapsed < 2 * SLACK
    rig.gw.restart_with(kiro_api_base_url=rig.gw.fake.url)
    rig.recovered(api, stream)


# ---- the client goes away ---------------------------------------------------------------------------


def disconnect_records(gw: Gateway) -> list[RequestRecord]:
    return [r for r in gw.service.store if r.status == 499]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_client_disconnects_mid_stream(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([Text("started"), Stall()]))
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", rig.gw.url + PATHS[api], json=chat_body(api, True), headers=headers_for(api, rig.gw.key)
        ) as resp,
    ):
        lines = resp.iter_lines()  # kept: a dropped line iterator closes the connection at once
        for line in lines:
            if "started" in line:
                break  # live, and stalled upstream
        assert rig.gw.fake.open_streams == 1
    # the client walked away: the gateway must close the upstream stream and account the request
    assert wait_until(lambda: rig.gw.fake.open_streams == 0)
    assert wait_until(lambda: len(disconnect_records(rig.gw)) == 1)
    assert disconnect_records(rig.gw)[0].error_kind == "client_disconnected"
    rig.recovered(api, True)


def test_a_client_leaving_is_one_error_kind_streamed_or_not(rig: Rig) -> None:
    rig.gw.enqueue(Reply([Text("started"), Stall()]))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            rig.gw.url + PATHS["openai"],
            json=chat_body("openai", False),
            headers=headers_for("openai", rig.gw.key),
            timeout=httpx.Timeout(10, read=0.3),
        )
    assert wait_until(lambda: len(disconnect_records(rig.gw)) == 1)
    assert disconnect_records(rig.gw)[0].error_kind == "client_disconnected"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_client_gives_up_on_a_non_streamed_call(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([Text("started"), Stall()]))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            rig.gw.url + PATHS[api],
            json=chat_body(api, False),
            headers=headers_for(api, rig.gw.key),
            timeout=httpx.Timeout(10, read=0.5),
        )
    assert time.monotonic() - started < 0.5 + SLACK
    assert wait_until(lambda: rig.gw.fake.open_streams == 0)
    assert wait_until(lambda: len(disconnect_records(rig.gw)) == 1)
    rig.recovered(api, False)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_client_gives_up_while_upstream_has_not_answered(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([Delay(30), Text("too late")]))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            rig.gw.url + PATHS[api],
            json=chat_body(api, True),
            headers=headers_for(api, rig.gw.key),
            timeout=httpx.Timeout(10, read=0.3),
        )
    assert wait_until(lambda: len(disconnect_records(rig.gw)) == 1)
    assert wait_until(lambda: rig.gw.fake.open_streams == 0)
    rig.recovered(api, True)


# ---- odd payloads in well-formed frames -------------------------------------------------------------


def frame(event_type: str, payload: bytes) -> Raw:
    return Raw(encode_event(event_type, payload))


def assert_complete(out: Outcome, api: Api) -> None:
    """Whatever Kiro sent, the client got a well-formed answer: strict JSON (``call`` parses it so), never
    a 500, and a stream that ends either finished or with one error event."""
    assert out.status != 500, out.body
    if not out.streamed:
        if out.status == 200:
            return
        assert out.status in (502, 504), out.body
        error_message(api, out.body)
        return
    assert out.events, "an empty stream"
    last_name, last = out.events[-1]
    if api == "openai":
        assert last == "[DONE]" or (isinstance(last, dict) and "error" in last), last
    else:
        assert last_name in ("message_stop", "error"), last_name


@pytest.mark.parametrize(
    "payload",
    [
        b'{"contextUsagePercentage": Infinity}',
        b'{"contextUsagePercentage": NaN}',
        b'{"contextUsagePercentage": 1e308}',
        b'{"usage": NaN, "unit": "credit"}',
    ],
    ids=["context-inf", "context-nan", "context-huge", "metering-nan"],
)
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_non_finite_numbers_from_kiro(rig: Rig, api: Api, stream: bool, payload: bytes) -> None:
    kind = "meteringEvent" if b"usage" in payload[:10] else "contextUsageEvent"
    rig.gw.enqueue(Reply([Text("hi"), Delay(0.02), frame(kind, payload)]))
    assert_success(call(rig.gw, api, stream), api, stream, "hi")
    record = last_record(rig.gw)
    assert (record.status, record.error) == (200, None)  # not a 500 after the answer was sent
    metrics = httpx.get(rig.gw.url + "/metrics", headers=headers_for(api, rig.gw.key), timeout=5)
    strict_json(metrics.content)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_lone_surrogate_from_kiro_when_not_streamed(rig: Rig, api: Api) -> None:
    rig.gw.enqueue(Reply([frame("assistantResponseEvent", b'{"content": "a\\ud800b"}')]))
    out = call(rig.gw, api, False)
    assert out.status == 200, out.body


CUT_TOOL_CALL = b'{"toolUseId": "t1", "name": "f", "input": "{\\"path\\": \\"/tm", "stop": true}'


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_cut_tool_arguments_never_look_finished_when_streamed(rig: Rig, api: Api) -> None:
    """Kiro cuts long tool inputs yet still says stop: a streamed call must not end as a normal finish."""
    rig.gw.enqueue(Reply([Text("Let me look."), Delay(0.05), frame("toolUseEvent", CUT_TOOL_CALL)]))
    assert_failed(call(rig.gw, api, True), api, True, UpstreamError, "incomplete arguments")
    rig.gw.enqueue(Reply([frame("toolUseEvent", CUT_TOOL_CALL)]))  # nothing said yet: a real status
    assert_error(call(rig.gw, api, True), api, UpstreamError, "incomplete arguments")
    rig.gw.enqueue(Reply([frame("toolUseEvent", CUT_TOOL_CALL)]))
    assert_error(call(rig.gw, api, False), api, UpstreamError, "incomplete arguments")
    rig.recovered(api, True)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN, Infinity and 1e308 included: json.dumps writes them as Python does
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
FIELDS = {
    "assistantResponseEvent": ("content",),
    "toolUseEvent": ("toolUseId", "name", "input", "stop"),
    "reasoningContentEvent": ("text", "signature"),
    "contextUsageEvent": ("contextUsagePercentage",),
    "meteringEvent": ("usage", "unit"),
    "followupPromptEvent": ("followupPrompt",),
}


@st.composite
def odd_frames(draw: st.DrawFn) -> Raw:
    event_type = draw(st.sampled_from(sorted(FIELDS)))
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return frame(event_type, draw(st.binary(max_size=20)))  # not JSON at all
    if choice == 1:
        return frame(event_type, json.dumps(draw(JSON_VALUES)).encode())  # JSON, maybe not an object
    names = draw(st.lists(st.sampled_from(FIELDS[event_type]), unique=True))
    body = {name: draw(JSON_VALUES) for name in names}
    if event_type == "toolUseEvent" and draw(st.booleans()):
        body.update(toolUseId="t1", name="f")  # a plausible call, with odd input or stop
    return frame(event_type, json.dumps(body).encode())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("odd"))
    try:
        yield gw
    finally:
        stop_gateway(gw)


#: Text that exercises the stream builders' buffering: thinking tags split anywhere, stop sequences.
TRICKY_TEXT = st.lists(
    st.sampled_from(["<thinking>", "</thinking>", "<", "/", "th", "STOP", "\n", "a", "é"]), max_size=8
).map("".join)


@st.composite
def request_bodies(draw: st.DrawFn, api: Api, stream: bool) -> dict[str, Any]:
    """A valid request with the options that change how an answer is built."""
    body = chat_body(api, stream, draw(st.sampled_from(["hello", "use the tool"])))
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.sampled_from([1, 3, 20]))
    stops = draw(st.lists(st.sampled_from(["STOP", "a", "\n", "</thinking>"]), max_size=2, unique=True))
    if stops:
        body["stop" if api == "openai" else "stop_sequences"] = stops
    if draw(st.booleans()):
        if api == "openai":
            body["reasoning_effort"] = "low"
        else:
            body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
            body["max_tokens"] = max(body.get("max_tokens", 0), 2000)
    if draw(st.booleans()):
        schema = {"type": "object", "properties": {"x": {"type": "string"}}}
        if api == "openai":
            body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
        else:
            body["tools"] = [{"name": "f", "input_schema": schema}]
    if api == "openai" and stream and draw(st.booleans()):
        body["stream_options"] = {"include_usage": True}
    return body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), api=st.sampled_from(["openai", "anthropic"]), stream=st.booleans())
def test_odd_payloads_in_well_formed_frames(
    shared: Gateway, data: st.DataObject, api: Api, stream: bool
) -> None:
    """Whatever well-framed events Kiro sends, for whatever request options: a well-formed answer."""
    steps = data.draw(
        st.lists(
            odd_frames() | st.builds(Text, TRICKY_TEXT) | st.builds(Text, st.text(max_size=10)), max_size=8
        )
    )
    shared.enqueue(Reply(steps))
    assert_complete(call(shared, api, stream, body=data.draw(request_bodies(api, stream))), api)
