"""The fake Kiro itself: validation, every reply step, the smart responder, the side routes, counters.

Everything goes over real HTTP to a fake on port 0, with a plain aiohttp client.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.eventstream import EventStreamError, FrameDecoder
from kiro_tray.protocol.kiro_events import (
    ContextUsageEvent,
    KiroEvent,
    KiroEventDecoder,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    ToolUseEvent,
    UnknownEvent,
    UpstreamExceptionEvent,
)

from .fake_kiro.__main__ import DEMO_REFRESH_TOKEN
from .fake_kiro.auth import BEARER_INVALID, Account
from .fake_kiro.replies import (
    ContextUsage,
    Corrupt,
    Delay,
    Disconnect,
    ExceptionFrame,
    Metering,
    Raw,
    Reasoning,
    Reply,
    Stall,
    Text,
    ToolUse,
    Unknown,
    error_reply,
    long_text_reply,
    paced_text_reply,
    smart_reply,
    split_text,
    text_reply,
    thinking_reply,
    throttle_reply,
    tool_reply,
)
from .fake_kiro.rules import DEFAULT_MAX_PAYLOAD_BYTES, validate
from .fake_kiro.server import FakeKiro, default_models

IMPROPER = {"message": "Improperly formed request.", "reason": None}
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452")).decode()


def weather_tool() -> dict[str, Any]:
    return {
        "toolSpecification": {
            "name": "get_weather",
            "description": "Weather for a city",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
        }
    }


def user(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "userInputMessage": {
            "content": content,
            "modelId": "claude-sonnet-4.5",
            "origin": "AI_EDITOR",
            **extra,
        }
    }


def assistant(content: str = "ok", **extra: Any) -> dict[str, Any]:
    return {"assistantResponseMessage": {"content": content, **extra}}


def body_with(current: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"chatTriggerType": "MANUAL", "conversationId": "c-1", "currentMessage": current}
    if history is not None:
        state["history"] = history
    return {"conversationState": state}


def minimal_body(content: str = "hello") -> dict[str, Any]:
    return body_with(user(content))


def tool_round_trip_body() -> dict[str, Any]:
    """History with a tool call answered by the current message, tools declared: all valid."""
    call = {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Oslo"}}
    result = {"toolUseId": "tu_1", "content": [{"text": "Sunny, 21 C"}], "status": "success"}
    current = user(
        "Tool results provided.", userInputMessageContext={"tools": [weather_tool()], "toolResults": [result]}
    )
    history = [
        user("weather in Oslo?", images=[{"format": "png", "source": {"bytes": PNG}}]),
        assistant("Checking.", toolUses=[call]),
    ]
    return body_with(current, history)


def current_of(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def history_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = body["conversationState"]["history"]
    return history


# ---- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
def account(fake: FakeKiro) -> Account:
    return fake.add_account()


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.issue_access_token()}"}


async def generate(
    session: aiohttp.ClientSession, fake: FakeKiro, account: Account, body: dict[str, Any] | bytes
) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**bearer(account), "Content-Type": "application/json"}
    async with session.post(f"{fake.url}/generateAssistantResponse", data=data, headers=headers) as resp:
        return resp.status, await resp.read()


def decode(data: bytes) -> list[KiroEvent]:
    decoder = KiroEventDecoder()
    events = decoder.feed(data)
    assert decoder.pending == 0
    return events


def text_of(events: list[KiroEvent]) -> str:
    return "".join(e.content for e in events if isinstance(e, TextEvent))


# ---- validation -------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set_trigger(value: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["conversationState"]["chatTriggerType"] = value

    return mutate


def _drop_trigger(body: dict[str, Any]) -> None:
    del body["conversationState"]["chatTriggerType"]


def _add_top_level(body: dict[str, Any]) -> None:
    body["systemPrompt"] = "be nice"


def _drop_user_input(body: dict[str, Any]) -> None:
    body["conversationState"]["currentMessage"] = {}


def _current_is_assistant(body: dict[str, Any]) -> None:
    body["conversationState"]["currentMessage"] = assistant("prefill")


def _history_starts_with_assistant(body: dict[str, Any]) -> None:
    body["conversationState"]["history"] = [assistant("hi"), user("q"), assistant("a")]


def _two_users_in_history(body: dict[str, Any]) -> None:
    body["conversationState"]["history"] = [user("a"), user("b"), assistant("c")]


def _history_ends_with_user(body: dict[str, Any]) -> None:
    body["conversationState"]["history"] = [user("a"), assistant("b"), user("c")]


def _two_assistants(body: dict[str, Any]) -> None:
    body["conversationState"]["history"] = [user("a"), assistant("b"), assistant("c")]


def _orphan_result(body: dict[str, Any]) -> None:
    current_of(body)["userInputMessageContext"]["toolResults"][0]["toolUseId"] = "tu_other"


def _unanswered_use(body: dict[str, Any]) -> None:
    del current_of(body)["userInputMessageContext"]["toolResults"]


def _unanswered_use_deep_in_history(body: dict[str, Any]) -> None:
    call = {"toolUseId": "tu_0", "name": "get_weather", "input": {}}
    history_of(body)[0:0] = [user("first"), assistant("calling", toolUses=[call])]


def _empty_tool_uses(body: dict[str, Any]) -> None:
    history_of(body)[1]["assistantResponseMessage"]["toolUses"] = []


def _empty_user_content(body: dict[str, Any]) -> None:
    history_of(body)[0]["userInputMessage"]["content"] = ""


def _empty_assistant_content(body: dict[str, Any]) -> None:
    history_of(body)[1]["assistantResponseMessage"]["content"] = ""


def _empty_content_with_results(body: dict[str, Any]) -> None:
    current_of(body)["content"] = ""


def _missing_content(body: dict[str, Any]) -> None:
    del history_of(body)[1]["assistantResponseMessage"]["content"]


def _empty_input_key(body: dict[str, Any]) -> None:
    history_of(body)[1]["assistantResponseMessage"]["toolUses"][0]["input"] = {"city": {"": 1}}


def _tools_in_history(body: dict[str, Any]) -> None:
    history_of(body)[0]["userInputMessage"]["userInputMessageContext"] = {"tools": [weather_tool()]}


def _spec(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = current_of(body)["userInputMessageContext"]["tools"][0]["toolSpecification"]
    return spec


def _long_tool_name(body: dict[str, Any]) -> None:
    _spec(body)["name"] = "t" * 65


def _spec_without(member: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        del _spec(body)[member]

    return mutate


def _schema_without_json(body: dict[str, Any]) -> None:
    _spec(body)["inputSchema"] = {"schema": {}}


def _schema_null(member: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        _spec(body)["inputSchema"]["json"][member] = None

    return mutate


def _cache_point_in_tools(body: dict[str, Any]) -> None:
    current_of(body)["userInputMessageContext"]["tools"][0]["cachePoint"] = {"type": "default"}


def _image(image: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        history_of(body)[0]["userInputMessage"]["images"] = [image]

    return mutate


def _image_in_context(body: dict[str, Any]) -> None:
    current_of(body)["userInputMessageContext"]["images"] = [{"format": "png", "source": {"bytes": PNG}}]


def _no_tools_declared(body: dict[str, Any]) -> None:
    del current_of(body)["userInputMessageContext"]["tools"]


def _unknown_model(body: dict[str, Any]) -> None:
    current_of(body)["modelId"] = "gpt-4o"


def _oversize(body: dict[str, Any]) -> None:
    history_of(body)[0]["userInputMessage"]["content"] = "x" * DEFAULT_MAX_PAYLOAD_BYTES


TOOL_CONFIG = {
    "message": "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
    "reason": "TOOL_CONFIG_MISSING",
}
VIOLATIONS: list[tuple[str, Mutation, int, dict[str, Any]]] = [
    ("top_level_fields", _add_top_level, 400, {**IMPROPER, "reason": "REQUEST_BODY_INVALID"}),
    ("structure", _drop_user_input, 400, IMPROPER),
    ("current_is_user", _current_is_assistant, 400, IMPROPER),
    ("chat_trigger_auto", _set_trigger("AUTO"), 400, IMPROPER),
    ("chat_trigger_missing", _drop_trigger, 400, IMPROPER),
    ("history_starts_with_user", _history_starts_with_assistant, 400, IMPROPER),
    ("two_users", _two_users_in_history, 400, IMPROPER),
    ("history_ends_with_user", _history_ends_with_user, 400, IMPROPER),
    ("two_assistants", _two_assistants, 400, IMPROPER),
    ("orphan_tool_result", _orphan_result, 400, IMPROPER),
    ("unanswered_tool_use", _unanswered_use, 400, IMPROPER),
    ("unanswered_tool_use_deep", _unanswered_use_deep_in_history, 400, IMPROPER),
    ("empty_tool_uses", _empty_tool_uses, 400, IMPROPER),
    ("empty_user_content", _empty_user_content, 400, IMPROPER),
    ("empty_assistant_content", _empty_assistant_content, 400, IMPROPER),
    ("empty_content_with_tool_results", _empty_content_with_results, 400, IMPROPER),
    ("missing_content", _missing_content, 400, IMPROPER),
    ("tool_input_empty_key", _empty_input_key, 400, IMPROPER),
    ("tools_in_history", _tools_in_history, 400, IMPROPER),
    ("tool_name_65", _long_tool_name, 400, IMPROPER),
    ("spec_no_name", _spec_without("name"), 400, IMPROPER),
    ("spec_no_description", _spec_without("description"), 400, IMPROPER),
    ("spec_no_input_schema", _spec_without("inputSchema"), 400, IMPROPER),
    ("spec_no_schema_json", _schema_without_json, 400, IMPROPER),
    ("schema_null_properties", _schema_null("properties"), 400, IMPROPER),
    ("schema_null_required", _schema_null("required"), 400, IMPROPER),
    ("cache_point_in_tools", _cache_point_in_tools, 400, IMPROPER),
    ("image_bad_format", _image({"format": "bmp", "source": {"bytes": PNG}}), 400, IMPROPER),
    ("image_bad_base64", _image({"format": "png", "source": {"bytes": "not base64!"}}), 400, IMPROPER),
    (
        "image_data_url",
        _image({"format": "png", "source": {"bytes": "data:image/png;base64," + PNG}}),
        400,
        IMPROPER,
    ),
    ("image_flat_shape", _image({"format": "png", "bytes": PNG}), 400, IMPROPER),
    ("image_in_context", _image_in_context, 400, IMPROPER),
    ("payload_size", _oversize, 400, IMPROPER),
    ("tool_config_missing", _no_tools_declared, 400, TOOL_CONFIG),
    (
        "model_id",
        _unknown_model,
        400,
        {"message": "Invalid model ID or insufficient subscription level to use it", "reason": None},
    ),
]


@pytest.mark.asyncio
async def test_valid_bodies_are_accepted(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    internal = minimal_body()
    current_of(internal)["modelId"] = "CLAUDE_3_7_SONNET_20250219_V1_0"
    longest_name = tool_round_trip_body()
    _spec(longest_name)["name"] = "t" * 64
    no_context = minimal_body()
    current_of(no_context)["userInputMessageContext"] = {}  # kiro.rs always sends it, even empty
    for body in (minimal_body(), tool_round_trip_body(), internal, longest_name, no_context):
        status, data = await generate(session, fake, account, body)
        assert status == 200, data
        assert text_of(decode(data))
    assert [r.status for r in fake.requests] == [200] * 5
    assert all(r.violation is None for r in fake.requests)


@pytest.mark.asyncio
@pytest.mark.parametrize(("rule", "mutate", "status", "expected"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
async def test_each_rule_violation_gets_kiros_answer(
    fake: FakeKiro,
    account: Account,
    session: aiohttp.ClientSession,
    rule: str,
    mutate: Mutation,
    status: int,
    expected: dict[str, Any],
) -> None:
    body = tool_round_trip_body()
    mutate(body)
    fake.enqueue(text_reply("queued"))
    answered, data = await generate(session, fake, account, body)
    assert (answered, json.loads(data)) == (status, expected)
    received = fake.requests[-1]
    assert received.status == status and received.violation is not None
    assert fake.queued == 1  # a rejected request does not consume a scripted reply


@pytest.mark.asyncio
async def test_non_json_body_is_improperly_formed(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        status, data = await generate(session, fake, account, raw)
        assert (status, json.loads(data)) == (400, IMPROPER)
    assert all(r.body == {} for r in fake.requests)


@pytest.mark.asyncio
async def test_context_limit_follows_the_model_list(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    sonnet = next(m for m in fake.models if m["modelId"] == "claude-sonnet-4.5")
    sonnet["tokenLimits"]["maxInputTokens"] = 10
    ok_status, _ = await generate(session, fake, account, minimal_body("x" * 40))  # 10 tokens: at the limit
    status, data = await generate(session, fake, account, minimal_body("x" * 44))
    assert ok_status == 200
    assert (status, json.loads(data)) == (
        400,
        {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"},
    )


@pytest.mark.asyncio
async def test_payload_limit_is_configurable(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    body = minimal_body("y" * 2_000)
    fake.max_payload_bytes = len(json.dumps(body)) - 1
    status, data = await generate(session, fake, account, body)
    assert (status, json.loads(data)) == (400, IMPROPER)
    fake.max_payload_bytes = len(json.dumps(body))
    assert (await generate(session, fake, account, body))[0] == 200


@pytest.mark.asyncio
async def test_profile_arn_rules(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    social = fake.add_account()
    idc = fake.add_account(kind="idc")
    own, other = minimal_body(), minimal_body()
    own["profileArn"] = social.profile_arn
    other["profileArn"] = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
    assert (await generate(session, fake, social, minimal_body()))[0] == 200  # no ARN: accepted
    assert (await generate(session, fake, social, own))[0] == 200
    status, data = await generate(session, fake, social, other)
    assert (status, json.loads(data)) == (
        403,
        {"message": "User is not authorized to make this call", "reason": None},
    )
    assert (await generate(session, fake, idc, other))[0] == 200  # only social accounts are checked


@pytest.mark.asyncio
async def test_rules_can_be_switched_off(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enforce_rules = False
    fake.enqueue(text_reply("raw"))
    status, data = await generate(session, fake, account, b"not json at all")
    assert status == 200 and text_of(decode(data)) == "raw"
    status, data = await generate(session, fake, account, {"systemPrompt": "x"})  # the responder copes too
    assert status == 200 and text_of(decode(data)).startswith("You said:")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
DELETE = object()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value, as the keys/indexes leading there."""
    found = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found += _paths(item, (*path, key))
    return found


def _damage(value: Any, path: tuple[Any, ...], new: Any) -> None:
    """Replace (or delete, for ``DELETE``) what sits at ``path`` inside ``value``, in place."""
    *parents, last = path
    for key in parents:
        value = value[key]
    if new is DELETE:
        del value[last]
    else:
        value[last] = new


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(_paths(tool_round_trip_body())[1:]), new=JSON | st.just(DELETE))
def test_validation_never_crashes_on_damaged_bodies(path: tuple[Any, ...], new: Any) -> None:
    """Any one member of a valid body replaced by arbitrary JSON (or removed): an answer, never a crash."""
    body = tool_round_trip_body()
    _damage(body, path, new)
    violation = validate(json.dumps(body).encode(), default_models())
    if violation is not None:
        assert violation.status in (400, 403) and set(violation.body) == {"message", "reason"}
    smart_reply(body)  # the responder copes with anything too (rules can be switched off)


@settings(max_examples=100, deadline=None)
@given(value=JSON)
def test_validation_answers_any_json(value: Any) -> None:
    violation = validate(json.dumps(value).encode(), default_models())
    assert violation is not None and violation.status == 400


# ---- the stream: framing and every step ------------------------------------------------------------

ALL_EVENTS = Reply(
    [
        Text("Hello "),
        Text("wörld ✓"),
        ToolUse("tu_9", "get_weather", '{"city":'),
        ToolUse("tu_9", "get_weather", '"Oslo"}', stop=True),
        Reasoning("pondering", "sig-1"),
        Unknown("followupPromptEvent", {"followupPrompt": {"content": "more?"}}),
        ContextUsage(42.5),
        Metering(0.31),
        ExceptionFrame("ContentLengthExceededException", "too long"),
    ]
)


@pytest.mark.asyncio
async def test_frames_decode_with_our_decoder_and_botocore(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(ALL_EVENTS)
    status, data = await generate(session, fake, account, minimal_body())
    assert status == 200
    assert decode(data) == [
        TextEvent("Hello "),
        TextEvent("wörld ✓"),
        ToolUseEvent("tu_9", "get_weather", '{"city":', stop=False),
        ToolUseEvent("tu_9", "get_weather", '"Oslo"}', stop=True),
        ReasoningEvent("pondering", "sig-1"),
        UnknownEvent("followupPromptEvent"),
        ContextUsageEvent(42.5),
        MeteringEvent(0.31, "credit"),
        UpstreamExceptionEvent("ContentLengthExceededException", "too long"),
    ]
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    messages = list(buffer)
    assert [m.headers.get(":event-type") or m.headers[":exception-type"] for m in messages] == [
        "assistantResponseEvent",
        "assistantResponseEvent",
        "toolUseEvent",
        "toolUseEvent",
        "reasoningContentEvent",
        "followupPromptEvent",
        "contextUsageEvent",
        "meteringEvent",
        "ContentLengthExceededException",
    ]
    assert json.loads(messages[1].payload) == {"content": "wörld ✓"}
    assert json.loads(messages[2].payload) == {
        "name": "get_weather",
        "toolUseId": "tu_9",
        "input": '{"city":',
    }
    assert messages[-1].headers[":message-type"] == "exception"


@pytest.mark.asyncio
async def test_chunking_and_headers_do_not_change_the_bytes(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    plain = Reply(list(ALL_EVENTS.steps))
    chunked = Reply(list(ALL_EVENTS.steps), chunking=7, headers={"x-amzn-RequestId": "req-1"})
    assert all(len(piece) <= 7 for piece in chunked.plan() if isinstance(piece, bytes))
    fake.enqueue(plain, chunked)
    _, first = await generate(session, fake, account, minimal_body())
    async with session.post(
        f"{fake.url}/generateAssistantResponse", json=minimal_body(), headers=bearer(account)
    ) as resp:
        second = await resp.read()
        assert resp.headers["x-amzn-RequestId"] == "req-1"
        assert resp.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert first == second


@pytest.mark.asyncio
async def test_raw_bytes_pass_through(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Text("a"), Raw(b"\x00\x01garbage")]))
    _, data = await generate(session, fake, account, minimal_body())
    assert data.endswith(b"\x00\x01garbage")


@pytest.mark.asyncio
async def test_delay_holds_back_the_first_byte(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Delay(0.15), Text("late")]))
    started = time.monotonic()
    _, data = await generate(session, fake, account, minimal_body())
    assert time.monotonic() - started >= 0.15
    assert text_of(decode(data)) == "late"


@pytest.mark.asyncio
async def test_paced_reply_spreads_its_chunks(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(paced_text_reply(4, 0.03))
    started = time.monotonic()
    _, data = await generate(session, fake, account, minimal_body())
    assert time.monotonic() - started >= 0.12
    assert text_of(decode(data)) == "tick " * 4


@pytest.mark.asyncio
async def test_stall_ends_when_the_client_goes(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Text("started"), Stall()]))
    async with session.post(
        f"{fake.url}/generateAssistantResponse", json=minimal_body(), headers=bearer(account)
    ) as resp:
        decoder = KiroEventDecoder()
        events: list[KiroEvent] = []
        while not events:
            events = decoder.feed(await resp.content.readany())
        assert events == [TextEvent("started")]
        assert fake.open_streams == 1
        resp.close()  # walk away mid-stream
    await asyncio.wait_for(fake.wait_idle(), 5)
    assert fake.open_streams == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("hold", [Stall(), Delay(60)], ids=["stall", "delay"])
async def test_close_does_not_hang_on_a_held_stream(
    session: aiohttp.ClientSession, hold: Stall | Delay
) -> None:
    server = FakeKiro()
    await server.start()
    stalled = server.add_account()
    server.enqueue(Reply([Text("started"), hold, Text("never sent")]))
    async with session.post(
        f"{server.url}/generateAssistantResponse", json=minimal_body(), headers=bearer(stalled)
    ) as resp:
        assert await resp.content.readany()
        await asyncio.wait_for(server.close(), 5)
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert server.open_streams == 0


@pytest.mark.asyncio
async def test_disconnect_breaks_the_stream(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Text("half"), ToolUse("t1", "get_weather", '{"ci'), Disconnect()]))
    received = bytearray()
    async with session.post(
        f"{fake.url}/generateAssistantResponse", json=minimal_body(), headers=bearer(account)
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in resp.content.iter_any():
                received += chunk
    assert decode(bytes(received)) == [
        TextEvent("half"),
        ToolUseEvent("t1", "get_weather", '{"ci', stop=False),
    ]
    await asyncio.wait_for(fake.wait_idle(), 5)


@pytest.mark.asyncio
async def test_corrupt_frame_fails_the_crc(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Text("fine"), Corrupt()]))
    _, data = await generate(session, fake, account, minimal_body())
    decoder = FrameDecoder()
    first_len = int.from_bytes(data[:4], "big")
    assert len(decoder.feed(data[:first_len])) == 1
    with pytest.raises(EventStreamError, match="message CRC"):
        decoder.feed(data[first_len:])
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    with pytest.raises(ChecksumMismatch):
        list(buffer)


@pytest.mark.asyncio
async def test_error_replies_answer_json(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(
        error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        throttle_reply(),
        Reply([], status=503, error_body={"message": "Service Unavailable"}, headers={"Retry-After": "2"}),
    )
    answers = [await generate(session, fake, account, minimal_body()) for _ in range(3)]
    assert [(s, json.loads(d)) for s, d in answers] == [
        (400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}),
        (429, {"message": "Too many requests, please wait before trying again.", "reason": None}),
        (503, {"message": "Service Unavailable"}),
    ]
    assert [r.status for r in fake.requests] == [400, 429, 503]


@pytest.mark.asyncio
async def test_queue_is_fifo_then_the_responder(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(text_reply("one"), text_reply("two"))
    texts = [
        text_of(decode((await generate(session, fake, account, minimal_body("q")))[1])) for _ in range(3)
    ]
    assert texts == ["one", "two", "You said: q"]
    fake.responder = lambda body: text_reply("custom " + current_of(body)["content"])
    assert text_of(decode((await generate(session, fake, account, minimal_body("z")))[1])) == "custom z"


# ---- builders ---------------------------------------------------------------------------------------


def events_of(reply: Reply) -> list[KiroEvent]:
    return decode(b"".join(piece for piece in reply.plan() if isinstance(piece, bytes)))


def test_text_reply_ends_like_kiro() -> None:
    events = events_of(text_reply("The answer is 42.", chunks=4, context_pct=10.0, credits=0.05))
    assert [e.kind for e in events] == ["text"] * 4 + ["context_usage", "metering"]
    assert text_of(events) == "The answer is 42."
    assert events[-2:] == [ContextUsageEvent(10.0), MeteringEvent(0.05, "credit")]
    assert [e.kind for e in events_of(text_reply("hi", context_pct=None, credits=None))] == ["text", "text"]


def test_tool_reply_fragments_the_input() -> None:
    events = events_of(
        tool_reply(
            "get_weather",
            {"city": "Paris", "unit": "celsius"},
            tool_use_id="tu_1",
            fragments=6,
            text_before="Let me check.",
        )
    )
    assert events[0] == TextEvent("Let me check.")
    uses = [e for e in events if isinstance(e, ToolUseEvent)]
    assert len(uses) == 6 and all(u.tool_use_id == "tu_1" and u.name == "get_weather" for u in uses)
    assert [u.stop for u in uses] == [False] * 5 + [True]
    assert json.loads("".join(u.input for u in uses)) == {"city": "Paris", "unit": "celsius"}
    ids = {s.tool_use_id for _ in range(3) for s in tool_reply("x", {}).steps if isinstance(s, ToolUse)}
    assert len(ids) == 3  # fresh ids when none is given


def test_thinking_long_and_paced_builders() -> None:
    assert text_of(events_of(thinking_reply("hmm", "yes"))) == "<thinking>hmm</thinking>\n\nyes"
    assert len([e for e in events_of(long_text_reply()) if isinstance(e, TextEvent)]) == 200
    paced = paced_text_reply(3, 0.5)
    assert [s for s in paced.steps if isinstance(s, Delay)] == [Delay(0.5)] * 3


@given(text=st.text(max_size=200), chunks=st.integers(min_value=1, max_value=50))
def test_split_text_keeps_the_text(text: str, chunks: int) -> None:
    pieces = split_text(text, chunks)
    assert "".join(pieces) == text
    assert 1 <= len(pieces) <= chunks
    assert all(pieces) or text == ""


@given(size=st.integers(min_value=1, max_value=300))
def test_chunking_keeps_the_byte_stream(size: int) -> None:
    whole = b"".join(p for p in Reply(list(ALL_EVENTS.steps)).plan() if isinstance(p, bytes))
    pieces = [p for p in Reply(list(ALL_EVENTS.steps), chunking=size).plan() if isinstance(p, bytes)]
    assert b"".join(pieces) == whole and all(len(p) <= size for p in pieces)


# ---- the smart responder ----------------------------------------------------------------------------


def test_smart_responder_echoes_the_last_paragraph() -> None:
    body = minimal_body(
        "You are a helpful system prompt.\n\n<system-reminder>noise</system-reminder>\n\n"
        "Say hello to the gateway"
    )
    assert text_of(events_of(smart_reply(body))) == "You said: Say hello to the gateway"
    long = text_of(events_of(smart_reply(minimal_body("w" * 500))))
    assert len(long) == len("You said: ") + 200 and long.endswith("…")


def test_smart_responder_calls_a_declared_tool() -> None:
    body = minimal_body('Please run [[tool:get_weather {"city": "Oslo", "note": "a ]] b"}]] now')
    current_of(body)["userInputMessageContext"] = {"tools": [weather_tool()]}
    events = events_of(smart_reply(body))
    uses = [e for e in events if isinstance(e, ToolUseEvent)]
    assert uses and uses[-1].stop and {u.name for u in uses} == {"get_weather"}
    assert json.loads("".join(u.input for u in uses)) == {"city": "Oslo", "note": "a ]] b"}
    assert events == events_of(smart_reply(copy.deepcopy(body)))  # deterministic, ids included
    undeclared = minimal_body('[[tool:rm_rf {"path": "/"}]]')
    assert text_of(events_of(smart_reply(undeclared))).startswith("You said:")


def test_smart_responder_acknowledges_tool_results() -> None:
    body = tool_round_trip_body()
    current_of(body)["userInputMessageContext"]["toolResults"][0]["content"] = [{"text": "r" * 100}]
    assert text_of(events_of(smart_reply(body))) == "Tool tu_1 returned: " + "r" * 80


def test_smart_responder_thinks_when_asked() -> None:
    body = minimal_body(
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>4000</max_thinking_length>\n\nWhy?"
    )
    text = text_of(events_of(smart_reply(body)))
    assert text.startswith("<thinking>") and "</thinking>\n\nYou said: Why?" in text
    off = minimal_body("The thinking_mode tags above were set by the client.\n\nWhy?")
    assert text_of(events_of(smart_reply(off))) == "You said: Why?"


# ---- auth, side routes and bookkeeping --------------------------------------------------------------


@pytest.mark.asyncio
async def test_bearer_suspension_and_quota(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.url}/generateAssistantResponse"
    async with session.post(url, json=minimal_body(), headers={"Authorization": "Bearer nope"}) as resp:
        assert (resp.status, await resp.json()) == (403, {"message": BEARER_INVALID, "reason": None})
    headers = bearer(account)
    account.expire_access_tokens()
    async with session.post(url, json=minimal_body(), headers=headers) as resp:
        assert resp.status == 403 and (await resp.json())["message"] == BEARER_INVALID
    account.suspended = True
    async with session.post(url, json=minimal_body(), headers=bearer(account)) as resp:
        assert resp.status == 403 and (await resp.json())["reason"] == "TEMPORARILY_SUSPENDED"
    account.suspended, account.quota_exhausted = False, True
    async with session.post(url, json=minimal_body(), headers=bearer(account)) as resp:
        assert resp.status == 402 and (await resp.json())["reason"] == "MONTHLY_REQUEST_COUNT"
    assert [r.status for r in fake.requests] == [403, 403, 403, 402]


async def get_json(
    session: aiohttp.ClientSession, url: str, account: Account, **params: str
) -> tuple[int, Any]:
    async with session.get(url, params=params, headers=bearer(account)) as resp:
        return resp.status, await resp.json()


@pytest.mark.asyncio
async def test_list_models_paginates(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.url}/ListAvailableModels"
    status, whole = await get_json(session, url, account, origin="AI_EDITOR")
    assert status == 200 and "nextToken" not in whole
    assert [m["modelId"] for m in whole["models"]] == [m["modelId"] for m in fake.models]
    assert "claude-sonnet-4.6" in [m["modelId"] for m in whole["models"]]
    first = whole["models"][0]
    assert set(first) == {
        "modelId",
        "modelName",
        "description",
        "supportedInputTypes",
        "rateMultiplier",
        "tokenLimits",
    }
    fake.models_page_size = 4
    pages, token = [], None
    while True:
        params = {"origin": "AI_EDITOR", "profileArn": account.profile_arn}
        status, page = await get_json(
            session, url, account, **params, **({"nextToken": token} if token else {})
        )
        assert status == 200
        pages.append(page["models"])
        token = page.get("nextToken")
        if token is None:
            break
    total = len(fake.models)
    assert [len(p) for p in pages] == [4] * (total // 4) + ([total % 4] if total % 4 else [])
    assert [m for p in pages for m in p] == whole["models"]
    assert (await get_json(session, url, account))[0] == 400  # origin is required
    assert (await get_json(session, url, account, origin="AI_EDITOR", nextToken="bogus"))[0] == 400
    status, refused = await get_json(session, url, account, origin="AI_EDITOR", profileArn="arn:other")
    assert status == 403 and refused["message"] == "User is not authorized to make this call"


@pytest.mark.asyncio
async def test_usage_limits(fake: FakeKiro, account: Account, session: aiohttp.ClientSession) -> None:
    url = f"{fake.url}/getUsageLimits"
    status, usage = await get_json(session, url, account, origin="AI_EDITOR", resourceType="AGENTIC_REQUEST")
    assert status == 200
    breakdown = usage["usageBreakdownList"][0]
    assert breakdown["currentUsage"] <= breakdown["usageLimit"] and usage["nextDateReset"] > time.time()
    assert usage["subscriptionInfo"]["subscriptionTitle"]
    fake.usage["usageBreakdownList"][0]["currentUsageWithPrecision"] = 49.5
    assert (await get_json(session, url, account))[1]["usageBreakdownList"][0][
        "currentUsageWithPrecision"
    ] == 49.5
    received = fake.requests[0]
    assert (received.path, received.query["resourceType"], received.status) == (
        "/getUsageLimits",
        "AGENTIC_REQUEST",
        200,
    )


@pytest.mark.asyncio
async def test_requests_are_recorded_without_the_auth_calls(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{fake.url}/refreshToken", json={"refreshToken": account.refresh_token}) as resp:
        token = (await resp.json())["accessToken"]
    body = minimal_body("recorded")
    async with session.post(
        f"{fake.url}/generateAssistantResponse",
        json=body,
        headers={"Authorization": f"Bearer {token}", "x-amzn-kiro-agent-mode": "vibe"},
    ) as resp:
        await resp.read()
    [received] = fake.requests
    assert received.path == "/generateAssistantResponse" and received.body == body and received.status == 200
    assert received.headers["x-amzn-kiro-agent-mode"] == "vibe"


@pytest.mark.asyncio
async def test_counters_return_to_zero(fake: FakeKiro, account: Account) -> None:
    connector = aiohttp.TCPConnector(force_close=True)  # one connection per request
    async with aiohttp.ClientSession(connector=connector) as session:
        fake.enqueue(*[long_text_reply(50) for _ in range(5)])
        results = await asyncio.gather(*(generate(session, fake, account, minimal_body()) for _ in range(8)))
    assert [status for status, _ in results] == [200] * 8
    await asyncio.wait_for(fake.wait_idle(), 5)
    assert fake.open_streams == 0
    assert fake.total_connections == 8


@pytest.mark.asyncio
async def test_concurrent_streams_are_counted(
    fake: FakeKiro, account: Account, session: aiohttp.ClientSession
) -> None:
    fake.enqueue(Reply([Text("a"), Stall()]), Reply([Text("b"), Stall()]))
    url = f"{fake.url}/generateAssistantResponse"
    first = await session.post(url, json=minimal_body(), headers=bearer(account))
    second = await session.post(url, json=minimal_body(), headers=bearer(account))
    assert await first.content.readany() and await second.content.readany()
    assert fake.open_streams == 2 and fake.open_connections >= 2
    first.close()
    second.close()
    await asyncio.wait_for(fake.wait_idle(), 5)
    assert fake.open_streams == 0


# ---- standalone -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_standalone_fake_serves_the_demo_account(session: aiohttp.ClientSession) -> None:
    root = Path(__file__).resolve().parent.parent
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_kiro",
        "--port",
        "0",
        "--chunks",
        "2",
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any("KIRO_API_BASE_URL=" in line for line in lines):
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            assert line, "the fake exited early"
            lines.append(line.decode())
        url = lines[0].split()[-1]
        assert DEMO_REFRESH_TOKEN in "".join(lines)
        for _ in range(2):  # the demo token does not rotate
            async with session.post(f"{url}/refreshToken", json={"refreshToken": DEMO_REFRESH_TOKEN}) as resp:
                token = (await resp.json())["accessToken"]
        async with session.post(
            f"{url}/generateAssistantResponse",
            json=minimal_body("demo"),
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            events = decode(await resp.read())
        assert (
            text_of(events) == "You said: demo" and len([e for e in events if isinstance(e, TextEvent)]) == 2
        )
    finally:
        process.send_signal(signal.SIGTERM)  # SIGINT may be ignored in background jobs
        assert await asyncio.wait_for(process.wait(), 20) == 0
