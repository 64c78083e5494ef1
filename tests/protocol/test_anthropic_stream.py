"""Anthropic messages built from Kiro events, checked with the anthropic SDK's own models and client.

The SDK client talks to a real aiohttp server on port 0 that replays the bytes our builder produced;
``client.messages.stream`` accumulates them with the SDK's ``accumulate_event``.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from kiro_tray.protocol.anthropic_stream import (
    EMPTY_TURN_TEXT,
    UNSIGNED_THINKING,
    AnthropicCollector,
    AnthropicStream,
)
from kiro_tray.protocol.errors import UpstreamError
from kiro_tray.protocol.kiro_events import (
    ContextUsageEvent,
    KiroEvent,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    ToolUseEvent,
    UpstreamExceptionEvent,
)
from kiro_tray.protocol.turn import TurnParams

from .conftest import Replay
from .streams import stream_parts, turn_params

EVENT = TypeAdapter[RawMessageStreamEvent](RawMessageStreamEvent)


def params(**overrides: Any) -> TurnParams:
    return turn_params("claude-test-model", 777, **overrides)


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    raw = body.split(b"\n\n")
    assert raw[-1] == b"", "every event ends with a blank line"
    out = []
    for item in raw[:-1]:
        event_line, data_line = item.decode("utf-8").split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        name, data = event_line[len("event: ") :], json.loads(data_line[len("data: ") :])
        assert data["type"] == name
        out.append((name, data))
    return out


def validated(body: bytes) -> list[dict[str, Any]]:
    """Every non-ping event, validated strictly against the SDK's stream event models."""
    out = []
    for name, data in sse_events(body):
        if name != "ping":
            EVENT.validate_python(data)
        out.append(data)
    return out


def shape(data: dict[str, Any]) -> str:
    """A compact description of one event for order assertions."""
    kind = data["type"]
    if kind == "content_block_start":
        return f"start {data['index']} {data['content_block']['type']}"
    if kind == "content_block_delta":
        return f"delta {data['index']} {data['delta']['type']}"
    if kind == "content_block_stop":
        return f"stop {data['index']}"
    return str(kind)


def tool_fragments(tool_id: str, name: str, arguments: str, size: int) -> list[KiroEvent]:
    events: list[KiroEvent] = [
        ToolUseEvent(tool_id, name, arguments[i : i + size], False) for i in range(0, len(arguments), size)
    ]
    events.append(ToolUseEvent(tool_id, name, "", True))
    return events


def sdk(replay: Replay) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=replay.url, api_key="test-key", max_retries=0)


# --- wire shape ------------------------------------------------------------------------------------


def test_exact_event_order_for_thinking_text_and_tool_use() -> None:
    events: list[KiroEvent] = [
        TextEvent("<thinking>\nPlan."),
        TextEvent("</thinking>\n\nReading it."),
        *tool_fragments("tooluse_1", "read", '{"path":"a"}', 4),
        ContextUsageEvent(1.0),
    ]
    stream = AnthropicStream(params(thinking=True), message_id="msg_1")
    body = b"".join(stream_parts(stream, events))
    assert [shape(e) for e in validated(body)] == [
        "message_start",
        "ping",
        "start 0 thinking",
        "delta 0 thinking_delta",
        "delta 0 signature_delta",
        "stop 0",
        "start 1 text",
        "delta 1 text_delta",
        "stop 1",
        "start 2 tool_use",
        "delta 2 input_json_delta",
        "delta 2 input_json_delta",
        "delta 2 input_json_delta",
        "stop 2",
        "message_delta",
        "message_stop",
    ]
    assert stream.stop_reason == "tool_use"


def test_message_start_and_delta_fields() -> None:
    stream = AnthropicStream(params(), message_id="msg_abc")
    events = validated(b"".join(stream_parts(stream, [TextEvent("hi"), ContextUsageEvent(25.0)])))
    assert events[0] == {
        "type": "message_start",
        "message": {
            "id": "msg_abc",
            "type": "message",
            "role": "assistant",
            "model": "claude-test-model",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 777,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    }
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 50_000, "output_tokens": 1},
    }
    assert events[-1] == {"type": "message_stop"}


def test_thinking_block_start_and_signature() -> None:
    signed = validated(
        b"".join(stream_parts(AnthropicStream(params(thinking=True)), [ReasoningEvent("r", "sig-1")]))
    )
    assert signed[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert signed[4]["delta"] == {"type": "signature_delta", "signature": "sig-1"}
    tagged = validated(
        b"".join(stream_parts(AnthropicStream(params(thinking=True)), [TextEvent("<thinking>t")]))
    )
    assert tagged[4]["delta"] == {"type": "signature_delta", "signature": UNSIGNED_THINKING}


@pytest.mark.parametrize(
    "events",
    [[], [ContextUsageEvent(1.0)], [TextEvent("<thinking>only thoughts</thinking>\n")]],
    ids=["nothing", "bookkeeping-only", "thinking-only"],
)
def test_never_an_empty_final_turn(events: list[KiroEvent]) -> None:
    body = b"".join(stream_parts(AnthropicStream(params(thinking=True)), events))
    data = validated(body)
    texts = [e["delta"]["text"] for e in data if e["type"] == "content_block_delta" and "text" in e["delta"]]
    assert texts == [EMPTY_TURN_TEXT]
    assert data[-2]["delta"]["stop_reason"] == "end_turn"


def test_stop_sequence_and_max_tokens_in_message_delta() -> None:
    stream = AnthropicStream(params(stop_sequences=("\n\nHuman:",)))
    data = validated(b"".join(stream_parts(stream, [TextEvent("Sure.\n"), TextEvent("\nHuman: more")])))
    assert data[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"}
    assert [e["delta"]["text"] for e in data if e["type"] == "content_block_delta"] == ["Sure."]

    stream = AnthropicStream(params())
    exceeded = UpstreamExceptionEvent("ContentLengthExceededException", "Input is too long.")
    data = validated(b"".join(stream_parts(stream, [TextEvent("Long answer"), exceeded])))
    assert data[-2]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_failure_is_an_error_event_in_the_anthropic_envelope() -> None:
    stream = AnthropicStream(params())
    throttled = UpstreamExceptionEvent("ThrottlingException", "Too many requests")
    events = sse_events(b"".join(stream_parts(stream, [TextEvent("x"), throttled])))
    name, data = events[-1]
    assert name == "error"
    assert data == {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "Kiro upstream error (ThrottlingException): Too many requests",
        },
    }
    assert "message_stop" not in [n for n, _ in events]


def test_a_cut_tool_call_never_reaches_message_stop() -> None:
    stream = AnthropicStream(params())
    events = sse_events(b"".join(stream_parts(stream, [ToolUseEvent("t", "edit", '{"old": "a', False)])))
    names = [n for n, _ in events]
    assert names[-1] == "error"
    assert "message_delta" not in names and "message_stop" not in names


def test_finish_is_idempotent() -> None:
    stream = AnthropicStream(params())
    stream.start()
    stream.feed(TextEvent("hi"))
    assert b"message_stop" in stream.finish()
    assert stream.finish() == b""


def test_ping() -> None:
    assert sse_events(AnthropicStream(params()).ping()) == [("ping", {"type": "ping"})]


# --- through the SDK client ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sdk_message_stream_accumulates_everything(replay: Replay) -> None:
    arguments = json.dumps({"file_path": "/src/main.py", "old_string": "x = 1", "new_string": "x = «2»"})
    events: list[KiroEvent] = [
        TextEvent("<thin"),
        TextEvent("king>\nThe user wants `</thinking>` handled.\n</thin"),
        TextEvent("king>\n\nEditing now."),
        *tool_fragments("tooluse_7", "t_ab12", arguments, 6),
        ContextUsageEvent(12.0),
        MeteringEvent(0.1, "credit"),
    ]
    stream = AnthropicStream(params(thinking=True, tool_names={"t_ab12": "Edit"}))
    replay.parts = stream_parts(stream, events)
    async with sdk(replay) as client:
        async with client.messages.stream(
            model="claude-test-model", max_tokens=1024, messages=[{"role": "user", "content": "edit"}]
        ) as sdk_stream:
            final = await sdk_stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    thinking, text, tool_use = final.content
    assert thinking.type == "thinking" and thinking.thinking == "The user wants `</thinking>` handled."
    assert thinking.signature == UNSIGNED_THINKING
    assert text.type == "text" and text.text == "Editing now."
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name, tool_use.input) == ("tooluse_7", "Edit", json.loads(arguments))
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 24_000
    assert final.usage.output_tokens == stream.usage.output_tokens > 0


@pytest.mark.asyncio
async def test_sdk_raises_the_error_event(replay: Replay) -> None:
    replay.parts = stream_parts(
        AnthropicStream(params()),
        [TextEvent("Hel"), UpstreamExceptionEvent("ThrottlingException", "slow down")],
    )
    async with sdk(replay) as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with client.messages.stream(
                model="claude-test-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ) as sdk_stream:
                async for _ in sdk_stream:
                    pass
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "overloaded_error"


@pytest.mark.asyncio
async def test_sdk_parses_the_collected_message(replay: Replay) -> None:
    collector = AnthropicCollector(params(thinking=True), message_id="msg_c")
    for event in [
        ReasoningEvent("Deep thought.", "sig-xyz"),
        TextEvent("Here."),
        *tool_fragments("tooluse_3", "Bash", '{"command": "ls"}', 5),
        ContextUsageEvent(0.5),
    ]:
        collector.feed(event)
    replay.json = collector.result()
    async with sdk(replay) as client:
        message = await client.messages.create(
            model="claude-test-model", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.id == "msg_c"
    assert [b.model_dump(exclude_none=True) for b in message.content] == [
        {"type": "thinking", "thinking": "Deep thought.", "signature": "sig-xyz"},
        {"type": "text", "text": "Here."},
        {"type": "tool_use", "id": "tooluse_3", "name": "Bash", "input": {"command": "ls"}},
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 1000


# --- the collector ---------------------------------------------------------------------------------


def collect(events: list[KiroEvent], **overrides: Any) -> Message:
    collector = AnthropicCollector(params(**overrides))
    for event in events:
        collector.feed(event)
        if collector.done:
            break
    return Message.model_validate(collector.result())


def test_collector_text_and_stop_sequence() -> None:
    message = collect([TextEvent("one two "), TextEvent("three")], stop_sequences=("two",))
    assert [b.model_dump(exclude_none=True) for b in message.content] == [{"type": "text", "text": "one "}]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "two")


def test_collector_empty_turn_gets_a_single_space() -> None:
    message = collect([])
    assert [b.model_dump(exclude_none=True) for b in message.content] == [{"type": "text", "text": " "}]
    assert message.usage.output_tokens == 1


def test_collector_tool_without_arguments_has_empty_input() -> None:
    message = collect(tool_fragments("t", "Glob", "", 1))
    assert message.content[0].model_dump(exclude_none=True) == {
        "type": "tool_use",
        "id": "t",
        "name": "Glob",
        "input": {},
    }


def test_collector_unparsable_tool_json_is_an_error_not_empty_input() -> None:
    with pytest.raises(UpstreamError, match="middle of a tool call"):
        collect([ToolUseEvent("t", "Write", '{"content": "unfinished', False)])
    with pytest.raises(UpstreamError, match="incomplete arguments"):
        collect([ToolUseEvent("t", "Write", '{"content": "unfinished', True)])
    with pytest.raises(UpstreamError, match="incomplete arguments"):
        collect([ToolUseEvent("t", "Write", "[1, 2]", True)])  # not an object


def test_collector_raises_upstream_exceptions() -> None:
    with pytest.raises(UpstreamError, match=r"Kiro upstream error \(ValidationException\): bad"):
        collect([UpstreamExceptionEvent("ValidationException", "bad")])
