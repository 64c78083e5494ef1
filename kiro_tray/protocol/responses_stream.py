"""Kiro events -> OpenAI Responses: streamed ``response.*`` SSE events, or one ``response`` object.

Streaming, every event with a strictly increasing ``sequence_number``: ``response.created``,
``response.in_progress``; per output item ``response.output_item.added``, then

- a message: ``response.content_part.added``, ``response.output_text.delta`` as Kiro's text arrives,
  ``response.output_text.done``, ``response.content_part.done``;
- reasoning (with ``reasoning.summary`` asked for): ``response.reasoning_summary_part.added``,
  ``response.reasoning_summary_text.delta`` / ``.done``, ``response.reasoning_summary_part.done``;
- a function call: ``response.function_call_arguments.delta`` fragments as Kiro's tool input arrives,
  ``response.function_call_arguments.done``; a custom tool: ``response.custom_tool_call_input.delta`` /
  ``.done`` with the raw input decoded from the ``input`` argument as it streams; a ``local_shell_call``
  whole at its end;

then ``response.output_item.done``; finally ``response.completed`` (or ``response.incomplete`` with
``incomplete_details.reason = "max_output_tokens"`` after a length stop) carrying the whole response and
its ``usage``. A failure after the stream began is ``response.failed`` with ``error.code``/``message``.

Structured output (``text.format``) arrives as the forced answer tool's arguments: it streams as
``output_text`` of a message and is checked against the schema when the call ends; a mismatch fails the
response. Collected (``stream: false``), the same events build the same final ``response`` object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal, assert_never

from .errors import GatewayError, UpstreamError
from .responses_request import OutputTool, ResponseShape, encrypt_reasoning, new_id
from .schema_check import schema_problem
from .sse import json_text, utf8
from .tokens import estimate_text_tokens
from .turn import (
    BlockStop,
    TextDelta,
    TextStart,
    ThinkingDelta,
    ThinkingStart,
    ToolArgsDelta,
    ToolStart,
    TurnDriven,
    TurnOutput,
    TurnParams,
)

ItemKind = Literal["message", "reasoning", "function", "custom", "local_shell", "answer"]
Item = dict[str, Any]
START_EVENTS = ("response.created", "response.in_progress")
_TEXT_PART: Item = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


class _InputDecoder:
    """Decodes the string value of ``"input"`` out of streamed JSON argument fragments, as far as the
    fragments so far allow (an escape cut in half waits for the rest)."""

    __slots__ = ("_buf", "_done", "_pos")
    _KEY = '"input"'

    def __init__(self) -> None:
        self._buf = ""
        self._pos = -1  # where the string's content starts; -1 before it is found
        self._done = False

    def feed(self, fragment: str) -> str:
        self._buf += fragment
        if self._done:
            return ""
        if self._pos < 0 and not self._seek():
            return ""
        out: list[str] = []
        buf, pos = self._buf, self._pos
        while pos < len(buf):
            char = buf[pos]
            if char == '"':
                self._done = True
                break
            if char != "\\":
                out.append(char)
                pos += 1
                continue
            size = 6 if buf[pos + 1 : pos + 2] == "u" else 2
            if buf[pos + 1 : pos + 2] == "u" and buf[pos + 2 : pos + 4].lower() in ("d8", "d9", "da", "db"):
                size = 12  # a surrogate pair: decode both halves together
            if pos + size > len(buf):
                break
            try:
                out.append(json.loads(f'"{buf[pos : pos + size]}"'))
            except ValueError:
                out.append(buf[pos : pos + size])
            pos += size
        self._pos = pos
        return "".join(out)

    def _seek(self) -> bool:
        start = self._buf.find(self._KEY)
        if start < 0:
            return False
        rest = self._buf[start + len(self._KEY) :]
        stripped = rest.lstrip()
        if not stripped.startswith(":"):
            return False
        value = stripped[1:].lstrip()
        if not value.startswith('"'):
            return False
        self._pos = len(self._buf) - len(value) + 1
        return True


def _custom_input(arguments: str) -> str:
    """The raw input of a custom tool call from its JSON arguments (``{"input": ...}``; a single other
    string member is taken too; anything else is passed on as the JSON text)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    if isinstance(value, dict):
        if isinstance(value.get("input"), str):
            return str(value["input"])
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(strings) == 1 and len(value) == 1:
            return strings[0]
    return arguments


def _shell_action(arguments: str) -> Item:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = {}
    value = value if isinstance(value, dict) else {}
    command = value.get("command")
    if isinstance(command, str):
        command = ["bash", "-lc", command]
    env = value.get("env")
    return {
        "type": "exec",
        "command": [str(c) for c in command] if isinstance(command, list) else [],
        "env": {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        "timeout_ms": value.get("timeout_ms") if isinstance(value.get("timeout_ms"), int) else None,
        "user": None,
        "working_directory": value.get("working_directory") or value.get("workdir"),
    }


def usage_object(input_tokens: int, output_tokens: int, reasoning_tokens: int, credits: float | None) -> Item:
    usage: Item = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }
    if credits is not None:
        usage["credits_used"] = credits
    return usage


class ResponsesStream(TurnDriven):
    """One response: ``start()``, ``feed(event)``*, then ``finish()`` or ``fail()`` when streamed;
    ``feed(event)``* then ``result()`` when collected. ``on_done`` receives the final response object
    of a turn that ended normally (completed or incomplete), to store it."""

    def __init__(
        self,
        params: TurnParams,
        shape: ResponseShape,
        *,
        collect: bool = False,
        on_done: Callable[[Item], None] | None = None,
    ) -> None:
        super().__init__(params)
        self.shape = shape
        self.id = shape.response_id
        self._collect = collect
        self._on_done = on_done
        self._seq = len(START_EVENTS)  # start() may be written after the first chunk was fed
        self._output: list[Item] = []
        self._kind: ItemKind | None = None
        self._parts: list[str] = []
        self._signature: str | None = None
        self._decoder: _InputDecoder | None = None
        self._tool: OutputTool | None = None
        self._delta_head = b""
        self._delta_mid = b""
        self._reasoning_tokens = 0
        self._final: Item | None = None
        self._unsent = b""

    # -- the response object --

    def response(self, status: str, **extra: Any) -> Item:
        body: Item = {
            "id": self.id,
            "object": "response",
            "created_at": self.shape.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            **self.shape.echo,
            "output": list(self._output),
            "usage": None,
        }
        body.update(extra)
        return body

    def _usage(self) -> Item:
        usage = self._turn.usage
        return usage_object(usage.input_tokens, usage.output_tokens, self._reasoning_tokens, usage.credits)

    # -- events --

    def _event(self, kind: str, seq: int | None = None, **fields: Any) -> bytes:
        if seq is None:
            seq = self._seq
            self._seq += 1
        if self._collect:
            return b""
        body = json_text({"type": kind, "sequence_number": seq, **fields})
        return utf8(f"event: {kind}\ndata: {body}\n\n")

    def _delta(self, text: str) -> bytes:
        """The hot path: a delta event from its pre-encoded pieces."""
        seq = self._seq
        self._seq += 1
        if self._collect:
            return b""
        return self._delta_head + b"%d" % seq + self._delta_mid + utf8(json_text(text)) + b"}\n\n"

    def _set_delta_head(self, kind: str, **fields: Any) -> None:
        self._delta_head = utf8(f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":')
        self._delta_mid = utf8("," + json_text(fields)[1:-1] + ',"delta":')

    def start(self) -> bytes:
        """``response.created`` and ``response.in_progress``: numbered first, though the relay writes
        them after feeding Kiro's first chunk (whose failure may still become a real HTTP status)."""
        created = self.response("in_progress", output=[])
        return b"".join(self._event(kind, seq, response=created) for seq, kind in enumerate(START_EVENTS))

    def _emit(self, outputs: list[TurnOutput]) -> bytes:
        out = bytearray()
        try:
            for item in outputs:
                out += self._encode(item)
        except GatewayError:
            self._unsent = bytes(out)  # numbered already: fail() sends them first, so no number is skipped
            raise
        return bytes(out)

    def _encode(self, item: TurnOutput) -> bytes:
        match item:
            case TextDelta(text=text):
                self._parts.append(text)
                return self._delta(text)
            case ThinkingDelta(text=text):
                self._parts.append(text)
                return self._delta(text) if self.shape.summary else b""
            case ToolArgsDelta(fragment=fragment):
                return self._args(fragment)
            case TextStart():
                return self._open_message("message", new_id("msg"))
            case ThinkingStart():
                return self._open_reasoning()
            case ToolStart(tool_id=tool_id, name=name):
                return self._open_tool(tool_id, name)
            case BlockStop(signature=signature):
                self._signature = signature
                return self._close()
            case _:
                assert_never(item)

    @property
    def _index(self) -> int:
        return len(self._output) - 1

    def _add(self, kind: ItemKind, item: Item) -> bytes:
        self._kind = kind
        self._parts = []
        self._output.append(item)
        return self._event("response.output_item.added", output_index=self._index, item=item)

    def _open_message(self, kind: ItemKind, item_id: str) -> bytes:
        item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        out = self._add(kind, item)
        where: Item = {"item_id": item_id, "output_index": self._index, "content_index": 0}
        self._set_delta_head("response.output_text.delta", **where, logprobs=[])
        return out + self._event("response.content_part.added", **where, part=_TEXT_PART)

    def _open_reasoning(self) -> bytes:
        item_id = new_id("rs")
        out = self._add("reasoning", {"id": item_id, "type": "reasoning", "summary": []})
        if not self.shape.summary:
            return out
        where: Item = {"item_id": item_id, "output_index": self._index, "summary_index": 0}
        self._set_delta_head("response.reasoning_summary_text.delta", **where)
        part = {"type": "summary_text", "text": ""}
        return out + self._event("response.reasoning_summary_part.added", **where, part=part)

    def _open_tool(self, call_id: str, name: str) -> bytes:
        if name == self.shape.format_tool:
            return self._open_message("answer", new_id("msg"))
        tool = self._tool = self.shape.tools.get(name) or OutputTool("function", name)
        namespace = {"namespace": tool.namespace} if tool.namespace else {}
        item: Item
        match tool.kind:
            case "function":
                item_id = new_id("fc")
                item = {
                    "id": item_id,
                    "type": "function_call",
                    "status": "in_progress",
                    "arguments": "",
                    "call_id": call_id,
                    "name": tool.name,
                    **namespace,
                }
                out = self._add("function", item)
                self._set_delta_head(
                    "response.function_call_arguments.delta", item_id=item_id, output_index=self._index
                )
                return out
            case "custom":
                item_id = new_id("ctc")
                item = {
                    "id": item_id,
                    "type": "custom_tool_call",
                    "status": "in_progress",
                    "input": "",
                    "call_id": call_id,
                    "name": tool.name,
                    **namespace,
                }
                self._decoder = _InputDecoder()
                out = self._add("custom", item)
                self._set_delta_head(
                    "response.custom_tool_call_input.delta", item_id=item_id, output_index=self._index
                )
                return out
            case "local_shell":
                item = {
                    "id": new_id("lsh"),
                    "type": "local_shell_call",
                    "status": "in_progress",
                    "call_id": call_id,
                    "action": _shell_action(""),
                }
                return self._add("local_shell", item)
            case _:
                assert_never(tool.kind)

    def _args(self, fragment: str) -> bytes:
        self._parts.append(fragment)
        match self._kind:
            case "function" | "answer":
                return self._delta(fragment)
            case "custom":
                assert self._decoder is not None
                text = self._decoder.feed(fragment)
                return self._delta(text) if text else b""
            case _:
                return b""

    def _close(self) -> bytes:
        kind, self._kind = self._kind, None
        item = self._output[-1]
        text = "".join(self._parts)
        where: Item = {"item_id": item["id"], "output_index": self._index}
        out = b""
        match kind:
            case "message" | "answer":
                if kind == "answer":
                    self._check_answer(text)
                part = {**_TEXT_PART, "text": text}
                out += self._event(
                    "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
                )
                out += self._event("response.content_part.done", **where, content_index=0, part=part)
                item.update(status="completed", content=[part])
            case "reasoning":
                self._reasoning_tokens += estimate_text_tokens(text)
                if self.shape.summary:
                    part = {"type": "summary_text", "text": text}
                    out += self._event(
                        "response.reasoning_summary_text.done", **where, summary_index=0, text=text
                    )
                    out += self._event(
                        "response.reasoning_summary_part.done", **where, summary_index=0, part=part
                    )
                    item["summary"] = [part]
                if self.shape.encrypted_reasoning:
                    item["encrypted_content"] = encrypt_reasoning(text, self._signature)
            case "function":
                out += self._event(
                    "response.function_call_arguments.done", **where, arguments=text, name=item["name"]
                )
                item.update(status="completed", arguments=text)
            case "custom":
                raw = _custom_input(text)
                out += self._event("response.custom_tool_call_input.done", **where, input=raw)
                item.update(status="completed", input=raw)
            case "local_shell":
                item.update(status="completed", action=_shell_action(text))
            case None:
                return b""
            case _:
                assert_never(kind)
        return out + self._event("response.output_item.done", output_index=self._index, item=item)

    def _check_answer(self, text: str) -> None:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise UpstreamError("The model's structured output is not a JSON object.", param="text.format")
        schema = self.shape.format_schema
        problem = schema_problem(value, schema) if schema is not None else None
        if problem:
            raise UpstreamError(
                f"The model's structured output does not match the schema ({problem}).", param="text.format"
            )

    # -- the end --

    def _closing(self) -> bytes:
        usage = self._usage()
        if self._turn.stop_reason == "max_tokens":
            final = self.response(
                "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=usage
            )
            kind = "response.incomplete"
        else:
            final = self.response("completed", usage=usage, completed_at=int(time.time()))
            kind = "response.completed"
        self._final = final
        if self._on_done is not None:
            self._on_done(final)
        return self._event(kind, response=final)

    def fail(self, err: GatewayError) -> bytes:
        error = {"code": err.code or err.kind, "message": err.message}
        unsent, self._unsent = self._unsent, b""
        return unsent + self._event(
            "response.failed", response=self.response("failed", error=error, usage=self._usage())
        )

    def result(self) -> Item:
        self.finish()
        assert self._final is not None
        return self._final
