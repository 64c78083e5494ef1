"""The event-stream codec against the protocol doc's vectors, every chunking, damage, and botocore."""

from __future__ import annotations

import itertools
import json

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.eventstream import (
    EventStreamError,
    FrameDecoder,
    encode_event,
    encode_exception,
    encode_frame,
)
from kiro_tray.protocol.kiro_events import (
    ContextUsageEvent,
    KiroEventDecoder,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    ToolUseEvent,
    UnknownEvent,
    UpstreamExceptionEvent,
)

# kiro-protocol.md 6.3
TEXT_VECTOR = bytes.fromhex(
    "0000007c0000005c3bddcf780b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e74"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700"
    "056576656e747b22636f6e74656e74223a224869227db02babdc"
)
TOOL_VECTOR = bytes.fromhex(
    "000000b2000000528a40b4c50b3a6576656e742d7479706507000c746f6f6c5573654576656e740d3a636f6e74656e742d"
    "747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226e61"
    "6d65223a226765745f77656174686572222c22746f6f6c5573654964223a22746f6f6c7573655f31222c22696e70757422"
    "3a227b5c22636974795c223a222c2273746f70223a66616c73657dcd6a6969"
)
EXCEPTION_VECTOR = bytes.fromhex(
    "00000090000000618e91a9b70f3a657863657074696f6e2d747970650700135468726f74746c696e67457863657074696f"
    "6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d7479706507"
    "0009657863657074696f6e7b226d657373616765223a22546f6f206d616e79207265717565737473227dfeb6d812"
)
VECTORS = (TEXT_VECTOR, TOOL_VECTOR, EXCEPTION_VECTOR)
EXPECTED = (
    TextEvent("Hi"),
    ToolUseEvent("tooluse_1", "get_weather", '{"city":', False),
    UpstreamExceptionEvent("ThrottlingException", "Too many requests"),
)
STREAM = b"".join(VECTORS)


def test_encoder_reproduces_the_vectors_byte_for_byte() -> None:
    assert encode_event("assistantResponseEvent", b'{"content":"Hi"}') == TEXT_VECTOR
    tool = b'{"name":"get_weather","toolUseId":"tooluse_1","input":"{\\"city\\":","stop":false}'
    assert encode_event("toolUseEvent", tool) == TOOL_VECTOR
    assert encode_exception("ThrottlingException", b'{"message":"Too many requests"}') == EXCEPTION_VECTOR


def test_vectors_decode_to_typed_events() -> None:
    assert KiroEventDecoder().feed(STREAM) == list(EXPECTED)


@pytest.mark.parametrize("offset", range(len(STREAM) + 1))
def test_every_split_offset(offset: int) -> None:
    decoder = KiroEventDecoder()
    events = decoder.feed(STREAM[:offset]) + decoder.feed(STREAM[offset:])
    assert events == list(EXPECTED)
    assert decoder.pending == 0


def test_byte_at_a_time() -> None:
    decoder = KiroEventDecoder()
    events = [event for i in range(len(STREAM)) for event in decoder.feed(STREAM[i : i + 1])]
    assert events == list(EXPECTED)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    decoder = KiroEventDecoder()
    events = [e for a, b in itertools.pairwise(bounds) for e in decoder.feed(STREAM[a:b])]
    assert events == list(EXPECTED)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60), st.integers(min_value=1, max_value=7))
def test_multibyte_text_split_anywhere_is_never_damaged(text: str, step: int) -> None:
    data = encode_event("assistantResponseEvent", json.dumps({"content": text}, ensure_ascii=False).encode())
    decoder = KiroEventDecoder()
    events = [e for i in range(0, len(data), step) for e in decoder.feed(data[i : i + step])]
    assert events == [TextEvent(text)]


def test_emoji_and_cjk_split_inside_a_character() -> None:
    text = "héllo 世界 🎉 done"
    data = encode_event("assistantResponseEvent", json.dumps({"content": text}, ensure_ascii=False).encode())
    payload_start = data.index("世".encode())
    decoder = KiroEventDecoder()
    assert decoder.feed(data[: payload_start + 1]) == []
    assert decoder.feed(data[payload_start + 1 :]) == [TextEvent(text)]


def test_flipped_payload_byte_fails_the_message_crc() -> None:
    damaged = bytearray(TEXT_VECTOR)
    damaged[-6] ^= 0x01
    with pytest.raises(EventStreamError, match="message CRC"):
        FrameDecoder().feed(bytes(damaged))


def test_flipped_length_byte_fails_the_prelude_crc() -> None:
    damaged = bytearray(TEXT_VECTOR)
    damaged[3] ^= 0x01
    with pytest.raises(EventStreamError, match="prelude CRC"):
        FrameDecoder().feed(bytes(damaged))


def test_truncated_stream_leaves_pending_bytes() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(TEXT_VECTOR[:-3]) == []
    assert decoder.pending == len(TEXT_VECTOR) - 3


def test_unknown_event_types_are_tolerated_and_counted() -> None:
    decoder = KiroEventDecoder()
    data = encode_event("followupPromptEvent", b'{"followupPrompt":{"content":"x"}}') * 2 + TEXT_VECTOR
    assert decoder.feed(data) == [
        UnknownEvent("followupPromptEvent"),
        UnknownEvent("followupPromptEvent"),
        TextEvent("Hi"),
    ]
    assert decoder.unknown["followupPromptEvent"] == 2


def test_every_known_event_type() -> None:
    data = b"".join(
        [
            encode_event("reasoningContentEvent", b'{"text":"hmm","signature":"sig"}'),
            encode_event("contextUsageEvent", b'{"contextUsagePercentage":61.49}'),
            encode_event("meteringEvent", b'{"unit":"credit","unitPlural":"credits","usage":0.37}'),
            encode_event("toolUseEvent", b'{"toolUseId":"t1","name":"x","stop":true}'),
            encode_frame(
                {":message-type": "error", ":error-code": "InternalError", ":error-message": "boom"}, b""
            ),
        ]
    )
    assert KiroEventDecoder().feed(data) == [
        ReasoningEvent("hmm", "sig"),
        ContextUsageEvent(61.49),
        MeteringEvent(0.37, "credit"),
        ToolUseEvent("t1", "x", "", True),
        UpstreamExceptionEvent("InternalError", "boom"),
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["assistantResponseEvent", "toolUseEvent", "meteringEvent", "somethingNew"]),
            st.binary(max_size=300),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_decoder_agrees_with_botocore(frames: list[tuple[str, bytes]], step: int) -> None:
    data = b"".join(encode_event(name, payload) for name, payload in frames)
    ours = FrameDecoder()
    theirs = EventStreamBuffer()
    mine, reference = [], []
    for i in range(0, len(data), step):
        chunk = data[i : i + step]
        mine.extend(ours.feed(chunk))
        theirs.add_data(chunk)
        reference.extend(theirs)
    assert [(dict(f.headers), f.payload) for f in mine] == [(m.headers, m.payload) for m in reference]
