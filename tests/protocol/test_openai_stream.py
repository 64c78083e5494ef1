"""OpenAI chat completions built from Kiro events, checked with the openai SDK's own models and client.

The SDK client talks to a real aiohttp server on port 0 that replays the bytes our builder produced.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat import ChatCompletionMessageFunctionToolCall as FunctionCall

from kiro_tray.protocol.errors import UpstreamError, UpstreamOverloaded
from kiro_tray.protocol.kiro_events import (
    ContextUsageEvent,
    KiroEvent,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    ToolUseEvent,
    UpstreamExceptionEvent,
)
from kiro_tray.protocol.openai_stream import OpenAICollector, OpenAIStream
from kiro_tray.protocol.sse import SSE_DONE
from kiro_tray.protocol.turn import TurnParams

from .conftest import Replay
from .streams import stream_parts, turn_params


def params(**overrides: Any) -> TurnParams:
    return turn_params("claude-test-model", 321, **overrides)


def data_lines(body: bytes) -> list[str]:
    events = body.split(b"\n\n")
    assert events[-1] == b"", "every event ends with a blank line"
    lines = []
    for event in events[:-1]:
        assert event.startswith(b"data: ") and b"\n" not in event, event
        lines.append(event[len(b"data: ") :].decode("utf-8"))
    return lines


def chunks_of(body: bytes) -> list[ChatCompletionChunk]:
    lines = data_lines(body)
    assert lines[-1] == "[DONE]"
    return [ChatCompletionChunk.model_validate(json.loads(line)) for line in lines[:-1]]


def function_calls(message: ChatCompletionMessage) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of every tool call; all must be function calls."""
    calls = message.tool_calls or []
    assert all(isinstance(call, FunctionCall) for call in calls)
    return [(c.id, c.function.name, c.function.arguments) for c in calls if isinstance(c, FunctionCall)]


def tool_fragments(tool_id: str, name: str, arguments: str, size: int) -> list[KiroEvent]:
    events: list[KiroEvent] = [
        ToolUseEvent(tool_id, name, arguments[i : i + size], False) for i in range(0, len(arguments), size)
    ]
    events.append(ToolUseEvent(tool_id, name, "", True))
    return events


def sdk(replay: Replay) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=replay.url + "/v1", api_key="test-key", max_retries=0)


# --- wire shape ------------------------------------------------------------------------------------


def test_text_stream_exact_chunks() -> None:
    stream = OpenAIStream(params(), completion_id="chatcmpl-abc", created=1700000000)
    body = b"".join(stream_parts(stream, [TextEvent("Hello"), TextEvent(", wörld ☃")]))
    chunks = chunks_of(body)
    assert [c.model_dump(exclude_none=True)["choices"] for c in chunks] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        [{"index": 0, "delta": {"content": "Hello"}}],
        [{"index": 0, "delta": {"content": ", wörld ☃"}}],
        [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    ]
    assert {(c.id, c.created, c.model, c.object) for c in chunks} == {
        ("chatcmpl-abc", 1700000000, "claude-test-model", "chat.completion.chunk")
    }
    assert "wörld ☃".encode() in body  # UTF-8, not \u escapes
    assert body.endswith(SSE_DONE)
    assert stream.finish_reason == "stop"


def test_tool_call_deltas_announce_then_stream_arguments() -> None:
    arguments = json.dumps({"command": "ls -la", "cwd": "/tmp"})
    stream = OpenAIStream(params(tool_names={"t_1": "run_shell_command"}))
    body = b"".join(
        stream_parts(stream, [TextEvent("Running."), *tool_fragments("tooluse_a", "t_1", arguments, 5)])
    )
    chunks = chunks_of(body)
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first = calls[0]
    assert first is not None and first[0].model_dump(exclude_none=True) == {
        "index": 0,
        "id": "tooluse_a",
        "type": "function",
        "function": {"name": "run_shell_command", "arguments": ""},
    }
    rest = [call[0] for call in calls[1:] if call]
    assert all(c.id is None and c.function is not None and c.function.name is None for c in rest)
    assert "".join(c.function.arguments or "" for c in rest if c.function) == arguments
    assert len(rest) == len(range(0, len(arguments), 5))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_thinking_is_reasoning_content_never_content() -> None:
    stream = OpenAIStream(params(thinking=True))
    events: list[KiroEvent] = [TextEvent("<thinking>\nHm"), TextEvent("m.</thinking>\n\nYes.")]
    deltas = [c.choices[0].delta for c in chunks_of(b"".join(stream_parts(stream, events)))]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert (reasoning, content) == ("Hmm.", "Yes.")


def test_usage_chunk_only_when_requested() -> None:
    events: list[KiroEvent] = [TextEvent("a" * 40), ContextUsageEvent(10.0), MeteringEvent(0.02, "credit")]
    with_usage = chunks_of(b"".join(stream_parts(OpenAIStream(params(include_usage=True)), events)))
    last = with_usage[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        20000,
        10,
        20010,
    )
    assert last.usage.model_dump()["credits_used"] == 0.02
    without = chunks_of(b"".join(stream_parts(OpenAIStream(params()), events)))
    assert all(c.usage is None and c.choices for c in without)


@pytest.mark.parametrize(
    ("overrides", "events", "finish_reason"),
    [
        (
            {},
            [TextEvent("x"), UpstreamExceptionEvent("ContentLengthExceededException", "too long")],
            "length",
        ),
        ({}, [TextEvent("x"), ContextUsageEvent(100.0)], "length"),
        ({"max_tokens": 2}, [TextEvent("x" * 100), TextEvent("never")], "length"),
        ({"stop_sequences": ("###",)}, [TextEvent("one #"), TextEvent("## two")], "stop"),
        ({}, [], "stop"),
    ],
)
def test_finish_reasons(overrides: dict[str, Any], events: list[KiroEvent], finish_reason: str) -> None:
    stream = OpenAIStream(params(**overrides))
    chunks = chunks_of(b"".join(stream_parts(stream, events)))
    assert chunks[-1].choices[0].finish_reason == finish_reason
    assert "never" not in "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "#" not in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_failure_is_an_error_event_without_done() -> None:
    stream = OpenAIStream(params())
    body = b"".join(
        stream_parts(stream, [TextEvent("partial"), UpstreamExceptionEvent("ThrottlingException", "slow")])
    )
    lines = data_lines(body)
    assert "[DONE]" not in lines
    error = json.loads(lines[-1])["error"]
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_overloaded"
    assert "ThrottlingException" in error["message"]


def test_a_cut_tool_call_fails_instead_of_finishing() -> None:
    stream = OpenAIStream(params())
    body = b"".join(stream_parts(stream, [ToolUseEvent("t", "write", '{"content": "abc', False)]))
    lines = data_lines(body)
    assert "[DONE]" not in lines
    assert all('"finish_reason":"' not in line for line in lines)
    assert "middle of a tool call" in json.loads(lines[-1])["error"]["message"]


def test_finish_is_idempotent() -> None:
    stream = OpenAIStream(params())
    stream.start()
    assert stream.finish().endswith(SSE_DONE)
    assert stream.finish() == b""


def test_line_separator_characters_never_break_an_event() -> None:
    stream = OpenAIStream(params())
    text = "a\u2028b\u2029c\x85d\r\ne"
    chunks = chunks_of(b"".join(stream_parts(stream, [TextEvent(text)])))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text


# --- through the SDK client ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sdk_stream_accumulates_text_and_tool_calls(replay: Replay) -> None:
    args_a = json.dumps({"path": "src/app.py", "content": "def main():\n    return 'ünïcode'\n"})
    args_b = json.dumps({"query": "weather"})
    events: list[KiroEvent] = [
        TextEvent("I'll write the file"),
        TextEvent(" and search."),
        *tool_fragments("tooluse_1", "write_file", args_a, 3),
        *tool_fragments("tooluse_2", "search", args_b, 4),
        ContextUsageEvent(2.0),
    ]
    replay.parts = stream_parts(OpenAIStream(params(include_usage=True)), events)
    async with sdk(replay) as client:
        async with client.chat.completions.stream(
            model="claude-test-model", messages=[{"role": "user", "content": "go"}]
        ) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll write the file and search."
    assert [(i, n, json.loads(a)) for i, n, a in function_calls(choice.message)] == [
        ("tooluse_1", "write_file", json.loads(args_a)),
        ("tooluse_2", "search", json.loads(args_b)),
    ]
    assert final.usage is not None and final.usage.prompt_tokens == 4000


@pytest.mark.asyncio
async def test_sdk_raises_on_a_mid_stream_error(replay: Replay) -> None:
    replay.parts = stream_parts(
        OpenAIStream(params()),
        [TextEvent("Hello"), UpstreamExceptionEvent("InternalServerException", "kaput")],
    )
    seen: list[str] = []
    async with sdk(replay) as client:
        stream = await client.chat.completions.create(
            model="claude-test-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError, match=r"Kiro upstream error \(InternalServerException\): kaput"):
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hello"


@pytest.mark.asyncio
async def test_sdk_parses_the_collected_completion(replay: Replay) -> None:
    collector = OpenAICollector(params(thinking=True), completion_id="chatcmpl-xyz", created=1)
    for event in [
        ReasoningEvent("Native thought.", "sig"),
        TextEvent("Answer"),
        *tool_fragments("tooluse_1", "lookup", '{"id": 7}', 2),
        MeteringEvent(0.5, "credit"),
    ]:
        collector.feed(event)
    replay.json = collector.result()
    async with sdk(replay) as client:
        completion = await client.chat.completions.create(
            model="claude-test-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.id == "chatcmpl-xyz"
    message = completion.choices[0].message
    assert message.content == "Answer"
    assert message.model_dump()["reasoning_content"] == "Native thought."
    assert function_calls(message) == [("tooluse_1", "lookup", '{"id": 7}')]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None and completion.usage.model_dump()["credits_used"] == 0.5


# --- the collector ---------------------------------------------------------------------------------


def collect(events: list[KiroEvent], **overrides: Any) -> dict[str, Any]:
    collector = OpenAICollector(params(**overrides))
    for event in events:
        collector.feed(event)
        if collector.done:
            break
    return collector.result()


def test_collector_content_is_none_when_only_tool_calls() -> None:
    result = collect(tool_fragments("t", "ls", "", 1))
    completion = ChatCompletion.model_validate(result)
    message = completion.choices[0].message
    assert message.content is None
    assert function_calls(message) == [("t", "ls", "{}")]
    assert "reasoning_content" not in result["choices"][0]["message"]


def test_collector_always_reports_usage() -> None:
    completion = ChatCompletion.model_validate(collect([TextEvent("hello world!")]))
    assert completion.choices[0].message.content == "hello world!"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (321, 3)
    assert completion.choices[0].finish_reason == "stop"


def test_collector_empty_turn_has_empty_content() -> None:
    completion = ChatCompletion.model_validate(collect([ContextUsageEvent(1.0)]))
    assert completion.choices[0].message.content == ""


def test_collector_stop_sequence() -> None:
    result = collect([TextEvent("alpha STO"), TextEvent("P beta")], stop_sequences=("STOP",))
    assert result["choices"][0]["message"]["content"] == "alpha "
    assert result["choices"][0]["finish_reason"] == "stop"


def test_collector_raises_for_exceptions_and_cut_streams() -> None:
    with pytest.raises(UpstreamOverloaded):
        collect([TextEvent("x"), UpstreamExceptionEvent("ThrottlingException", "")])
    with pytest.raises(UpstreamError, match="middle of a tool call"):
        collect([ToolUseEvent("t", "f", '{"a":', False)])
    # Closed by a new call's id, but its JSON never completed: not a finished turn either.
    with pytest.raises(UpstreamError, match="incomplete arguments"):
        collect([ToolUseEvent("t", "f", '{"a":', False), *tool_fragments("u", "g", "{}", 2)])
