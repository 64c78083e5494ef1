"""Kiro events -> OpenAI chat completions: streamed ``chat.completion.chunk`` SSE, or one ``chat.completion``.

Streaming (kiro-protocol.md 5.1, the spec-like variant): a role-only first chunk; text as
``delta.content``; thinking as ``delta.reasoning_content``; each tool call announced once with
``{index, id, type: "function", function: {name, arguments: ""}}`` and then streamed as
``{index, function: {arguments: <fragment>}}``; a final chunk with an empty delta and the
``finish_reason``; a usage chunk (``choices: []``) only when ``stream_options.include_usage`` was
set; then ``data: [DONE]``. A failure after the response started is one ``data: {"error": ...}``
event and no ``[DONE]``, so a client never mistakes a broken stream for a finished one.

Every chunk shares one ``id``/``created``/``model``; the envelope around the delta is encoded once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final, Literal, assert_never

from .errors import GatewayError
from .openai_errors import error_body
from .sse import SSE_DONE, json_text, sse_data, utf8
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
    TurnUsage,
    parse_tool_input,
)

FinishReason = Literal["stop", "tool_calls", "length"]

_FINISH_REASONS: Final[dict[StopReason, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}


def finish_reason_for(stop_reason: StopReason) -> FinishReason:
    return _FINISH_REASONS[stop_reason]


def usage_body(usage: TurnUsage) -> dict[str, Any]:
    """OpenAI ``usage`` (estimates), plus ``credits_used`` when Kiro metered the turn."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.credits is not None:
        body["credits_used"] = usage.credits
    return body


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class OpenAIStream(TurnDriven):
    """A chat completion: ``start()``, ``feed(event)``*, then ``finish()`` or ``fail()`` when streamed;
    ``feed(event)``* then ``result()`` when collected (``collect=True``).

    ``feed``, ``finish`` and ``result`` raise :class:`GatewayError` for upstream failures; a stream answers
    them with ``fail(err)``.
    """

    def __init__(
        self,
        params: TurnParams,
        *,
        completion_id: str | None = None,
        created: int | None = None,
        collect: bool = False,
    ):
        super().__init__(params, collect=collect)
        self.id = completion_id or new_completion_id()
        self.created = int(time.time()) if created is None else created
        self._finish_reason: FinishReason | None = None
        self._tool_index = -1
        self._head = json_text(
            {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": params.model}
        )[:-1]
        prefix = utf8(f'data: {self._head},"choices":[{{"index":0,"delta":')
        self._chunk_prefix = prefix
        self._chunk_suffix = b',"logprobs":null,"finish_reason":null}]}\n\n'
        self._content_head = prefix + b'{"content":'
        self._reasoning_head = prefix + b'{"reasoning_content":'
        self._args_head = b""
        self._delta_tail = b"}" + self._chunk_suffix
        self._args_tail = b"}}]}" + self._chunk_suffix

    @property
    def finish_reason(self) -> FinishReason | None:
        """Set by ``finish()``."""
        return self._finish_reason

    def start(self) -> bytes:
        return self._chunk_prefix + b'{"role":"assistant","content":""}' + self._chunk_suffix

    def _closing(self) -> bytes:
        reason = self._finish_reason = finish_reason_for(self._turn.stop_reason)
        if self._blocks is not None:
            return b""
        parts = [self._chunk_prefix + b'{},"logprobs":null,"finish_reason":"%s"}]}\n\n' % reason.encode()]
        if self.params.include_usage:
            body = json_text(usage_body(self._turn.usage))
            parts.append(utf8(f'data: {self._head},"choices":[],"usage":{body}}}\n\n'))
        parts.append(SSE_DONE)
        return b"".join(parts)

    def fail(self, err: GatewayError) -> bytes:
        """The OpenAI error envelope as one ``data:`` event; deliberately no ``[DONE]`` after it."""
        return sse_data(error_body(err))

    def _encode(self, item: TurnOutput) -> bytes:
        match item:
            case TextDelta(text=text):
                return self._content_head + utf8(json_text(text)) + self._delta_tail
            case ThinkingDelta(text=text):
                return self._reasoning_head + utf8(json_text(text)) + self._delta_tail
            case ToolArgsDelta(fragment=fragment):
                return self._args_head + utf8(json_text(fragment)) + self._args_tail
            case ToolStart(tool_id=tool_id, name=name):
                self._tool_index += 1
                index = self._tool_index
                self._args_head = self._chunk_prefix + utf8(
                    f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":'
                )
                call = {
                    "index": index,
                    "id": tool_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                return self._chunk_prefix + utf8(json_text({"tool_calls": [call]})) + self._chunk_suffix
            case TextStart() | ThinkingStart() | BlockStop():
                return b""
            case _:
                assert_never(item)

    def result(self) -> dict[str, Any]:
        """The ``chat.completion`` the collected outputs make."""
        blocks = self.finished_blocks()
        text: list[str] = []
        reasoning: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in blocks:
            if block.kind == "text":
                text.append(block.text)
            elif block.kind == "thinking":
                reasoning.append(block.text)
            elif block.kind == "tool_use":
                parse_tool_input(block)  # a cut call is an error, not a finished turn
                function = {"name": block.name, "arguments": block.text}
                tool_calls.append({"id": block.tool_id, "type": "function", "function": function})
            else:
                assert_never(block.kind)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(text) if text or not tool_calls else None,
        }
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.params.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish_reason,
                }
            ],
            "usage": usage_body(self._turn.usage),
        }


class OpenAICollector(OpenAIStream):
    """A non-streamed ``chat.completion``: the stream builder, collecting."""

    def __init__(self, params: TurnParams, *, completion_id: str | None = None, created: int | None = None):
        super().__init__(params, completion_id=completion_id, created=created, collect=True)
