"""The neutral turn assembler: block lifecycle, tool calls, thinking, stop conditions, usage, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.errors import UpstreamError, UpstreamOverloaded
from kiro_tray.protocol.eventstream import encode_event, encode_exception
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
from kiro_tray.protocol.turn import (
    BlockCollector,
    BlockStop,
    TextDelta,
    TextStart,
    ThinkingDelta,
    ThinkingStart,
    ToolArgsDelta,
    ToolStart,
    TurnAssembler,
    TurnOutput,
    TurnParams,
)

from .streams import turn_params


def params(**overrides: Any) -> TurnParams:
    return turn_params("claude-sonnet-4-5", 1234, **overrides)


def run(turn: TurnAssembler, events: list[KiroEvent]) -> list[TurnOutput]:
    out: list[TurnOutput] = []
    for event in events:
        out += turn.feed(event)
    out += turn.finish()
    return out


def texts(outputs: list[TurnOutput]) -> str:
    return "".join(o.text for o in outputs if isinstance(o, TextDelta))


def tool(tool_id: str, name: str, fragment: str = "", stop: bool = False) -> ToolUseEvent:
    return ToolUseEvent(tool_id, name, fragment, stop)


# --- blocks ----------------------------------------------------------------------------------------


def test_text_tool_text_sequence() -> None:
    turn = TurnAssembler(params())
    out = run(
        turn,
        [
            TextEvent("Let me check."),
            TextEvent(" One moment."),
            tool("t1", "get_weather", '{"city":'),
            tool("t1", "get_weather", '"Paris"}'),
            tool("t1", "get_weather", stop=True),
            TextEvent("Done."),
        ],
    )
    assert out == [
        TextStart(),
        TextDelta("Let me check."),
        TextDelta(" One moment."),
        BlockStop("text"),
        ToolStart("t1", "get_weather"),
        ToolArgsDelta('{"city":'),
        ToolArgsDelta('"Paris"}'),
        BlockStop("tool_use"),
        TextStart(),
        TextDelta("Done."),
        BlockStop("text"),
    ]
    assert turn.stop_reason == "tool_use"
    assert turn.tool_calls == 1
    assert not turn.is_empty


def test_tool_call_in_many_fragments_streams_each_fragment_and_maps_the_alias_back() -> None:
    arguments = json.dumps({"path": "/tmp/x.py", "content": "print('hi')\n" * 20})
    fragments = [arguments[i : i + 7] for i in range(0, len(arguments), 7)]
    events: list[KiroEvent] = [tool("tooluse_9", "t_3f2a", f) for f in fragments]
    events.append(tool("tooluse_9", "t_3f2a", stop=True))
    turn = TurnAssembler(params(tool_names={"t_3f2a": "mcp__filesystem__write_file_with_a_very_long_name"}))
    out = run(turn, events)
    assert out[0] == ToolStart("tooluse_9", "mcp__filesystem__write_file_with_a_very_long_name")
    assert [o.fragment for o in out if isinstance(o, ToolArgsDelta)] == fragments
    assert out[-1] == BlockStop("tool_use")
    assert len(out) == len(fragments) + 2


def test_new_tool_id_closes_the_open_call_and_duplicates_and_late_fragments_are_ignored() -> None:
    turn = TurnAssembler(params())
    out = run(
        turn,
        [
            tool("a", "read", '{"p":1}'),
            tool("b", "read", '{"p":2}'),  # no stop for "a": a new id closes it
            tool("b", "read", stop=True),
            tool("b", "read", stop=True),  # duplicate stop
            tool("a", "read", "garbage"),  # late fragment for a closed call
        ],
    )
    assert out == [
        ToolStart("a", "read"),
        ToolArgsDelta('{"p":1}'),
        BlockStop("tool_use"),
        ToolStart("b", "read"),
        ToolArgsDelta('{"p":2}'),
        BlockStop("tool_use"),
    ]
    assert turn.tool_calls == 2


def test_fragments_without_an_id_belong_to_the_open_call() -> None:
    out = run(TurnAssembler(params()), [tool("a", "f", '{"x"'), tool("", "", ":1}"), tool("", "", stop=True)])
    assert out == [ToolStart("a", "f"), ToolArgsDelta('{"x"'), ToolArgsDelta(":1}"), BlockStop("tool_use")]


def test_a_tool_call_without_arguments_gets_an_empty_object() -> None:
    out = run(TurnAssembler(params()), [tool("a", "list_files", stop=True)])
    assert out == [ToolStart("a", "list_files"), ToolArgsDelta("{}"), BlockStop("tool_use")]


def test_empty_text_and_unknown_events_produce_nothing() -> None:
    turn = TurnAssembler(params())
    out = run(turn, [TextEvent(""), UnknownEvent("followupPromptEvent")])
    assert out == []
    assert turn.is_empty
    assert turn.stop_reason == "end_turn"


# --- thinking --------------------------------------------------------------------------------------


def test_thinking_tags_become_a_thinking_block_when_requested() -> None:
    turn = TurnAssembler(params(thinking=True))
    out = run(
        turn, [TextEvent("<think"), TextEvent("ing>\nWeigh it up."), TextEvent("</thinking>\n\nAnswer.")]
    )
    assert out == [
        ThinkingStart(),
        ThinkingDelta("Weigh it up."),
        BlockStop("thinking", None),
        TextStart(),
        TextDelta("Answer."),
        BlockStop("text"),
    ]


def test_thinking_tags_are_plain_text_when_thinking_was_not_requested() -> None:
    out = run(TurnAssembler(params()), [TextEvent("<thinking>x</thinking>\n\ny")])
    assert texts(out) == "<thinking>x</thinking>\n\ny"


def test_an_open_thinking_block_with_no_text_is_closed_normally() -> None:
    turn = TurnAssembler(params(thinking=True))
    out = run(turn, [TextEvent("<thinking>\nstill thinking when the stream ended"), ContextUsageEvent(5.0)])
    assert out == [
        ThinkingStart(),
        ThinkingDelta("still thinking when the stream ended"),
        BlockStop("thinking"),
    ]
    assert turn.stop_reason == "end_turn"


def test_reasoning_events_carry_the_signature_or_are_dropped() -> None:
    events: list[KiroEvent] = [
        ReasoningEvent("Think ", None),
        ReasoningEvent("hard.", "sig-abc"),
        TextEvent("Result"),
    ]
    out = run(TurnAssembler(params(thinking=True)), events)
    assert out == [
        ThinkingStart(),
        ThinkingDelta("Think "),
        ThinkingDelta("hard."),
        BlockStop("thinking", "sig-abc"),
        TextStart(),
        TextDelta("Result"),
        BlockStop("text"),
    ]
    assert run(TurnAssembler(params()), events) == [TextStart(), TextDelta("Result"), BlockStop("text")]


# --- stop sequences and max_tokens -----------------------------------------------------------------


def test_stop_sequence_split_across_chunks() -> None:
    turn = TurnAssembler(params(stop_sequences=("\nHuman:", "END")))
    out: list[TurnOutput] = []
    for chunk in ["Hello there", "\nHu", "man: next turn", "never seen"]:
        out += turn.feed(TextEvent(chunk))
        if turn.done:
            break
    out += turn.finish()
    assert texts(out) == "Hello there"
    assert turn.done
    assert turn.stop_reason == "stop_sequence"
    assert turn.stop_sequence == "\nHuman:"
    assert out[-1] == BlockStop("text")


def test_held_back_text_is_released_before_a_tool_call_and_at_the_end() -> None:
    turn = TurnAssembler(params(stop_sequences=("STOP",)))
    first = turn.feed(TextEvent("ends with ST"))
    assert texts(first) == "ends with "  # "ST" could start STOP
    out = first + turn.feed(tool("t", "f", "{}", stop=True)) + turn.feed(TextEvent("and S")) + turn.finish()
    assert texts(out) == "ends with STand S"
    assert turn.stop_reason == "tool_use"
    assert turn.stop_sequence is None


@st.composite
def stop_cases(draw: st.DrawFn) -> tuple[str, list[str], tuple[str, ...]]:
    text = draw(st.text(alphabet="abc\n", max_size=40))
    sequences = tuple(
        draw(st.lists(st.text(alphabet="abc\n", min_size=1, max_size=4), min_size=1, max_size=3))
    )
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return text, chunks, sequences


def reference_stop(text: str, sequences: tuple[str, ...]) -> tuple[str, str | None]:
    """Generation stops where a stop sequence is first completed."""
    for end in range(1, len(text) + 1):
        matches = [s for s in sequences if text[:end].endswith(s)]
        if matches:
            seq = max(matches, key=len)
            return text[: end - len(seq)], seq
    return text, None


@settings(max_examples=300, deadline=None)
@given(stop_cases())
def test_stop_sequences_under_any_chunking(case: tuple[str, list[str], tuple[str, ...]]) -> None:
    text, chunks, sequences = case
    turn = TurnAssembler(params(stop_sequences=sequences))
    out: list[TurnOutput] = []
    for chunk in chunks:
        out += turn.feed(TextEvent(chunk))
        if turn.done:
            break
    out += turn.finish()
    expected_text, expected_seq = reference_stop(text, sequences)
    assert texts(out) == expected_text
    assert turn.stop_sequence == expected_seq
    assert turn.stop_reason == ("stop_sequence" if expected_seq else "end_turn")


def test_max_tokens_stops_the_turn() -> None:
    turn = TurnAssembler(params(max_tokens=10))
    turn.feed(TextEvent("x" * 20))  # ~5 tokens
    assert not turn.done
    turn.feed(TextEvent("y" * 40))  # ~15 tokens
    assert turn.done
    assert turn.feed(TextEvent("ignored")) == []
    turn.finish()
    assert turn.stop_reason == "max_tokens"


def test_max_tokens_waits_for_the_open_tool_call_to_finish() -> None:
    turn = TurnAssembler(params(max_tokens=5))
    turn.feed(tool("t", "f", '{"text":"' + "z" * 80))
    assert not turn.done
    out = turn.feed(tool("t", "f", '"}', stop=True))
    assert out == [ToolArgsDelta('"}'), BlockStop("tool_use")]
    assert turn.done
    turn.finish()
    assert turn.stop_reason == "max_tokens"


# --- upstream exceptions, context usage, cut streams -------------------------------------------------


def test_content_length_exceeded_ends_the_turn_normally_with_max_tokens() -> None:
    turn = TurnAssembler(params())
    out = turn.feed(TextEvent("partial"))
    out += turn.feed(UpstreamExceptionEvent("ContentLengthExceededException", "Input is too long."))
    assert turn.done
    out += turn.finish()
    assert out == [TextStart(), TextDelta("partial"), BlockStop("text")]
    assert turn.stop_reason == "max_tokens"


def test_full_context_usage_marks_max_tokens() -> None:
    turn = TurnAssembler(params())
    run(turn, [TextEvent("hi"), ContextUsageEvent(100.0)])
    assert turn.stop_reason == "max_tokens"


def test_throttling_exception_is_overloaded() -> None:
    turn = TurnAssembler(params())
    turn.feed(TextEvent("hi"))
    with pytest.raises(UpstreamOverloaded, match="ThrottlingException"):
        turn.feed(UpstreamExceptionEvent("ThrottlingException", "Too many requests"))


def test_other_exceptions_are_upstream_errors_naming_type_and_message() -> None:
    with pytest.raises(UpstreamError) as info:
        TurnAssembler(params()).feed(UpstreamExceptionEvent("InternalServerException", "boom"))
    assert not isinstance(info.value, UpstreamOverloaded)
    assert info.value.message == "Kiro upstream error (InternalServerException): boom"


def test_a_stream_cut_in_the_middle_of_a_tool_call_is_an_error_never_a_finish() -> None:
    turn = TurnAssembler(params())
    turn.feed(TextEvent("Writing the file."))
    turn.feed(tool("t", "write", '{"content":"abc'))
    with pytest.raises(UpstreamError, match="middle of a tool call"):
        turn.finish()
    with pytest.raises(UpstreamError, match="middle of a tool call"):
        turn.finish()  # asking again never turns it into a normal finish


def test_usage_from_context_usage_and_metering() -> None:
    turn = TurnAssembler(params(context_window=200_000))
    assert turn.input_tokens == 1234  # the request estimate until Kiro reports
    assert not turn.looks_complete
    run(
        turn,
        [
            TextEvent("a" * 400),
            ContextUsageEvent(12.5),
            MeteringEvent(0.25, "credit"),
            MeteringEvent(0.5, None),
        ],
    )
    assert turn.input_tokens == 25_000
    assert turn.output_tokens == 100
    assert turn.credits == 0.75
    assert turn.usage.credits == 0.75
    assert turn.looks_complete


def test_output_estimate_counts_text_thinking_and_tool_input() -> None:
    turn = TurnAssembler(params(thinking=True))
    run(
        turn,
        [
            TextEvent("<thinking>" + "t" * 40 + "</thinking>\n" + "x" * 40),
            tool("a", "f", '{"k":"' + "y" * 32 + '"}', stop=True),  # 40 characters of JSON
        ],
    )
    assert turn.output_tokens == 30


def test_without_metering_or_context_usage_the_stream_does_not_look_complete() -> None:
    turn = TurnAssembler(params())
    run(turn, [TextEvent("hello")])
    assert not turn.looks_complete
    assert turn.credits is None


# --- through real frames ---------------------------------------------------------------------------


def frame(event_type: str, payload: dict[str, object]) -> bytes:
    return encode_event(event_type, json.dumps(payload).encode())


def test_real_frames_through_the_decoder_into_collected_blocks() -> None:
    stream = b"".join(
        [
            frame("assistantResponseEvent", {"content": "Checking "}),
            frame("assistantResponseEvent", {"content": "the weather."}),
            frame("toolUseEvent", {"name": "get_weather", "toolUseId": "tooluse_1", "input": '{"city":'}),
            frame("toolUseEvent", {"name": "get_weather", "toolUseId": "tooluse_1", "input": '"Paris"}'}),
            frame("toolUseEvent", {"name": "get_weather", "toolUseId": "tooluse_1", "stop": True}),
            frame("contextUsageEvent", {"contextUsagePercentage": 1.5}),
            frame("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.037}),
        ]
    )
    decoder = KiroEventDecoder()
    turn = TurnAssembler(params())
    collected = BlockCollector()
    for i in range(0, len(stream), 37):  # arbitrary network chunking
        for event in decoder.feed(stream[i : i + 37]):
            collected.add(turn.feed(event))
    collected.add(turn.finish())
    assert [(b.kind, b.text, b.tool_id, b.name) for b in collected.blocks] == [
        ("text", "Checking the weather.", "", ""),
        ("tool_use", '{"city":"Paris"}', "tooluse_1", "get_weather"),
    ]
    assert turn.input_tokens == 3000
    assert turn.credits == pytest.approx(0.037)
    assert turn.stop_reason == "tool_use"


def test_real_exception_frame_is_raised() -> None:
    event = KiroEventDecoder().feed(
        encode_exception("ThrottlingException", b'{"message":"Too many requests"}')
    )[0]
    with pytest.raises(UpstreamOverloaded, match="Too many requests"):
        TurnAssembler(params()).feed(event)
