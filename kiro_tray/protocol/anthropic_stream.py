"""Kiro events -> Anthropic Messages: streamed SSE events, or one ``message`` object.

Streaming order (kiro-protocol.md 5.2, what Claude Code needs): ``message_start`` (usage carries the
request estimate and ``output_tokens: 1``, as the real API does) and an immediate ``ping``; then per
block ``content_block_start`` / ``content_block_delta``* / ``content_block_stop`` with indices counting
up from 0; then ``message_delta`` (``stop_reason``, ``stop_sequence``, ``usage`` with the final
``input_tokens`` from Kiro's context usage and the ``output_tokens`` estimate) and ``message_stop``.

- Thinking blocks start as ``{"type": "thinking", "thinking": "", "signature": ""}`` and end with a
  ``signature_delta`` before their stop (the SDK's accumulator takes the signature from it). Kiro's own
  reasoning signature is passed on when there is one; tag-based thinking gets
  :data:`UNSIGNED_THINKING`, a marker the request converter can recognise.
- Tool blocks start as ``{"type": "tool_use", "id", "name", "input": {}}`` and stream their arguments
  as ``input_json_delta`` fragments.
- Never an empty final turn: Claude Code rejects a turn with no text and no tool call, so when the turn
  produced neither (nothing at all, or only thinking) one text block holding a single space is added
  before ``message_delta``. A space rather than ``""``: empty text blocks are rejected when the history
  is sent back.
- A failure after the response started is one ``event: error`` with the Anthropic envelope.
"""

from __future__ import annotations

import uuid
from typing import Any, Final, assert_never

from .anthropic_errors import error_body
from .errors import GatewayError
from .sse import json_text, sse_event, utf8
from .turn import (
    BlockStop,
    StopReason,
    TextDelta,
    TextStart,
    ThinkingDelta,
    ThinkingStart,
    ToolArgsDelta,
    ToolStart,
    TurnDriven,
    TurnOutput,
    TurnParams,
    parse_tool_input,
)

#: Signature given to thinking parsed from ``<thinking>`` tags (Kiro signs only native reasoning).
UNSIGNED_THINKING: Final = "kiro-tray-unsigned-thinking"
#: Text of the block added to a turn that would otherwise have no text and no tool call.
EMPTY_TURN_TEXT: Final = " "

PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP: Final = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_DELTA_TAIL: Final = b"}}\n\n"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _message_usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


class AnthropicStream(TurnDriven):
    """A message: ``start()``, ``feed(event)``*, then ``finish()`` or ``fail()`` when streamed;
    ``feed(event)``* then ``result()`` when collected (``collect=True``).

    ``feed``, ``finish`` and ``result`` raise :class:`GatewayError` for upstream failures; a stream answers
    them with ``fail(err)``. Call ``ping()`` during long upstream silences (every 25 s or less).
    """

    def __init__(self, params: TurnParams, *, message_id: str | None = None, collect: bool = False) -> None:
        super().__init__(params, collect=collect)
        self.id = message_id or new_message_id()
        self._index = -1
        self._delta_head = b""
        self._stop_reason: StopReason | None = None

    @property
    def stop_reason(self) -> StopReason | None:
        """Set by ``finish()``."""
        return self._stop_reason

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.params.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _message_usage(self.params.input_tokens, 1),
        }
        return sse_event("message_start", {"type": "message_start", "message": message}) + PING

    def ping(self) -> bytes:
        return PING

    def _closing(self) -> bytes:
        turn = self._turn
        parts = [b""]
        if not turn.has_answer:
            parts.append(self._emit([TextStart(), TextDelta(EMPTY_TURN_TEXT), BlockStop("text")]))
        reason = self._stop_reason = turn.stop_reason
        if self._blocks is not None:
            return b""
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": turn.stop_sequence},
            "usage": {"input_tokens": turn.input_tokens, "output_tokens": max(1, turn.output_tokens)},
        }
        parts += [sse_event("message_delta", delta), _MESSAGE_STOP]
        return b"".join(parts)

    def fail(self, err: GatewayError) -> bytes:
        return sse_event("error", error_body(err))

    def _start_block(self, block: dict[str, Any], delta_type: str, delta_field: str) -> bytes:
        self._index += 1
        index = self._index
        self._delta_head = utf8(
            'event: content_block_delta\ndata: {"type":"content_block_delta",'
            f'"index":{index},"delta":{{"type":"{delta_type}","{delta_field}":'
        )
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return sse_event("content_block_start", start)

    def _encode(self, item: TurnOutput) -> bytes:
        match item:
            case TextDelta(text=text) | ThinkingDelta(text=text):
                return self._delta_head + utf8(json_text(text)) + _DELTA_TAIL
            case ToolArgsDelta(fragment=fragment):
                return self._delta_head + utf8(json_text(fragment)) + _DELTA_TAIL
            case TextStart():
                return self._start_block({"type": "text", "text": ""}, "text_delta", "text")
            case ThinkingStart():
                block = {"type": "thinking", "thinking": "", "signature": ""}
                return self._start_block(block, "thinking_delta", "thinking")
            case ToolStart(tool_id=tool_id, name=name):
                tool: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
                return self._start_block(tool, "input_json_delta", "partial_json")
            case BlockStop(block=kind, signature=signature):
                stop = sse_event("content_block_stop", {"type": "content_block_stop", "index": self._index})
                if kind != "thinking":
                    return stop
                signed = {
                    "type": "content_block_delta",
                    "index": self._index,
                    "delta": {"type": "signature_delta", "signature": signature or UNSIGNED_THINKING},
                }
                return sse_event("content_block_delta", signed) + stop
            case _:
                assert_never(item)

    def result(self) -> dict[str, Any]:
        """The ``message`` the collected outputs make."""
        content: list[dict[str, Any]] = []
        for block in self.finished_blocks():
            if block.kind == "text":
                content.append({"type": "text", "text": block.text})
            elif block.kind == "thinking":
                signature = block.signature or UNSIGNED_THINKING
                content.append({"type": "thinking", "thinking": block.text, "signature": signature})
            elif block.kind == "tool_use":
                tool_input = parse_tool_input(block)
                content.append(
                    {"type": "tool_use", "id": block.tool_id, "name": block.name, "input": tool_input}
                )
            else:
                assert_never(block.kind)
        turn = self._turn
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.params.model,
            "content": content,
            "stop_reason": self._stop_reason,
            "stop_sequence": turn.stop_sequence,
            "usage": _message_usage(turn.input_tokens, max(1, turn.output_tokens)),
        }


class AnthropicCollector(AnthropicStream):
    """A non-streamed ``message``: the stream builder, collecting."""

    def __init__(self, params: TurnParams, *, message_id: str | None = None) -> None:
        super().__init__(params, message_id=message_id, collect=True)
