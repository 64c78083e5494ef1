"""Scripted replies for the fake Kiro: what one ``generateAssistantResponse`` call answers.

A :class:`Reply` is a list of steps. Event steps become event-stream frames exactly as Kiro sends them;
control steps (:class:`Delay`, :class:`Stall`, :class:`Disconnect`) shape the timing and the fate of the
connection. A reply with a non-200 ``status`` answers the JSON ``error_body`` instead of a stream.

The builders at the bottom (``text_reply``, ``tool_reply``, ...) produce the shapes real Kiro streams
have (kiro-protocol.md 3.2): content chunks, then ``contextUsageEvent`` and ``meteringEvent``.
:func:`smart_reply` is the default responder: it answers any valid request with something sensible.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

from kiro_tray.protocol.eventstream import encode_event, encode_exception

# ---- steps ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """One ``assistantResponseEvent`` carrying a chunk of text."""

    content: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One ``toolUseEvent`` fragment; a call's ``input`` fragments concatenate until ``stop``."""

    tool_use_id: str
    name: str
    input: str
    stop: bool = False
    kind: Literal["tool_use"] = "tool_use"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """One ``reasoningContentEvent`` (native reasoning)."""

    text: str
    signature: str | None = None
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """``contextUsageEvent``: how full the context window is, in percent."""

    percentage: float
    kind: Literal["context_usage"] = "context_usage"


@dataclass(frozen=True, slots=True)
class Metering:
    """``meteringEvent``: credits charged for the turn."""

    usage: float
    kind: Literal["metering"] = "metering"


@dataclass(frozen=True, slots=True)
class ExceptionFrame:
    """An ``exception`` frame inside the 200 stream (``ContentLengthExceededException``, ...)."""

    exception_type: str
    message: str
    kind: Literal["exception"] = "exception"


@dataclass(frozen=True, slots=True)
class Unknown:
    """An event type gateways do not interpret, e.g. ``followupPromptEvent``."""

    event_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    kind: Literal["unknown"] = "unknown"


@dataclass(frozen=True, slots=True)
class Delay:
    """Pause before the next write (also before the first byte when it comes first)."""

    seconds: float
    kind: Literal["delay"] = "delay"


@dataclass(frozen=True, slots=True)
class Stall:
    """Stop sending but keep the connection open until the client goes away (or the fake closes)."""

    kind: Literal["stall"] = "stall"


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Abort the TCP connection (a reset, not a clean end of the chunked body)."""

    kind: Literal["disconnect"] = "disconnect"


@dataclass(frozen=True, slots=True)
class Corrupt:
    """A frame whose message CRC is wrong (the prelude is intact, so decoders read it whole first)."""

    event_type: str = "assistantResponseEvent"
    payload: bytes = b'{"content":"corrupted"}'
    kind: Literal["corrupt"] = "corrupt"


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written as they are."""

    data: bytes
    kind: Literal["raw"] = "raw"


Step = (
    Text
    | ToolUse
    | Reasoning
    | ContextUsage
    | Metering
    | ExceptionFrame
    | Unknown
    | Delay
    | Stall
    | Disconnect
    | Corrupt
    | Raw
)
#: What the server does, in order: write bytes, or one of the control steps.
Action = bytes | Delay | Stall | Disconnect


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode_step(step: Step) -> bytes | Delay | Stall | Disconnect:
    """The wire bytes of an event step; control steps are returned as they are."""
    match step:
        case Text():
            return encode_event("assistantResponseEvent", _json({"content": step.content}))
        case ToolUse():
            body: dict[str, object] = {"name": step.name, "toolUseId": step.tool_use_id, "input": step.input}
            if step.stop:
                body["stop"] = True  # intermediate fragments carry no "stop" member, as in real traces
            return encode_event("toolUseEvent", _json(body))
        case Reasoning():
            reasoning: dict[str, object] = {"text": step.text}
            if step.signature is not None:
                reasoning["signature"] = step.signature
            return encode_event("reasoningContentEvent", _json(reasoning))
        case ContextUsage():
            return encode_event("contextUsageEvent", _json({"contextUsagePercentage": step.percentage}))
        case Metering():
            metering = {"unit": "credit", "unitPlural": "credits", "usage": step.usage}
            return encode_event("meteringEvent", _json(metering))
        case ExceptionFrame():
            return encode_exception(step.exception_type, _json({"message": step.message}))
        case Unknown():
            return encode_event(step.event_type, _json(dict(step.payload)))
        case Corrupt():
            frame = bytearray(encode_event(step.event_type, step.payload))
            frame[-1] ^= 0xFF
            return bytes(frame)
        case Raw():
            return step.data
        case Delay() | Stall() | Disconnect():
            return step
        case _:
            assert_never(step)


def _split_bytes(data: bytes, size: int | None) -> Iterator[bytes]:
    if size is None:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start : start + size]


@dataclass
class Reply:
    """One scripted answer. ``chunking`` re-splits each run of bytes into writes of that many bytes."""

    steps: list[Step]
    status: int = 200
    error_body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunking: int | None = None
    _plan: tuple[Action, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def plan(self) -> tuple[Action, ...]:
        """The steps compiled once: adjacent frames coalesced into one write (or ``chunking`` writes)."""
        if self._plan is None:
            actions: list[Action] = []
            pending = bytearray()
            for step in self.steps:
                encoded = encode_step(step)
                if isinstance(encoded, bytes):
                    pending += encoded
                    continue
                actions.extend(_split_bytes(bytes(pending), self.chunking) if pending else ())
                pending.clear()
                actions.append(encoded)
            if pending:
                actions.extend(_split_bytes(bytes(pending), self.chunking))
            self._plan = tuple(actions)
        return self._plan


# ---- builders ---------------------------------------------------------------------------------------


def split_text(text: str, chunks: int) -> list[str]:
    """``text`` in at most ``chunks`` nearly equal, non-empty pieces (one piece for empty text)."""
    count = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _usage_tail(context_pct: float | None, credits: float | None) -> list[Step]:
    tail: list[Step] = []
    if context_pct is not None:
        tail.append(ContextUsage(context_pct))
    if credits is not None:
        tail.append(Metering(credits))
    return tail


def text_reply(
    text: str, *, chunks: int = 3, context_pct: float | None = 12.5, credits: float | None = 0.02
) -> Reply:
    """Text in ``chunks`` events, then contextUsage and metering as real Kiro ends a turn (None omits)."""
    steps: list[Step] = [Text(piece) for piece in split_text(text, chunks)]
    return Reply(steps + _usage_tail(context_pct, credits))


def new_tool_use_id() -> str:
    return "tooluse_" + secrets.token_urlsafe(16)


def tool_reply(
    name: str,
    input: Mapping[str, Any],
    *,
    tool_use_id: str | None = None,
    fragments: int = 5,
    text_before: str = "",
    context_pct: float | None = 12.5,
    credits: float | None = 0.02,
) -> Reply:
    """A tool call whose input JSON is split over ``fragments`` events, only the last with ``stop``."""
    call_id = tool_use_id or new_tool_use_id()
    pieces = split_text(json.dumps(dict(input), ensure_ascii=False), fragments)
    steps: list[Step] = [Text(text_before)] if text_before else []
    last = len(pieces) - 1
    steps += [ToolUse(call_id, name, piece, stop=index == last) for index, piece in enumerate(pieces)]
    return Reply(steps + _usage_tail(context_pct, credits))


def thinking_reply(thinking: str, answer: str, *, chunks: int = 4) -> Reply:
    """Tag-style reasoning (kiro-protocol.md 2.10): ``<thinking>..</thinking>`` then the answer, as text."""
    return text_reply(f"<thinking>{thinking}</thinking>\n\n{answer}", chunks=chunks)


def error_reply(status: int, message: str, reason: str | None = None) -> Reply:
    """A non-200 answer with Kiro's JSON error body ``{"message", "reason"}``."""
    return Reply([], status=status, error_body={"message": message, "reason": reason})


def throttle_reply() -> Reply:
    return error_reply(429, "Too many requests, please wait before trying again.")


def paced_text_reply(n_chunks: int, interval: float, *, word: str = "tick ") -> Reply:
    """One text chunk every ``interval`` seconds (the first after one interval): a slow stream."""
    steps: list[Step] = []
    for _ in range(n_chunks):
        steps += [Delay(interval), Text(word)]
    return Reply(steps + _usage_tail(12.5, 0.02))


def long_text_reply(n_chunks: int = 200) -> Reply:
    """Many small chunks (a long answer, streamed)."""
    steps: list[Step] = [Text(f"chunk {index} ") for index in range(n_chunks)]
    return Reply(steps + _usage_tail(12.5, 0.02))


# ---- the default responder --------------------------------------------------------------------------

ECHO_LIMIT = 200
RESULT_LIMIT = 80
_DIRECTIVE = "[[tool:"
_THINKING_ON = re.compile(r"<thinking_mode>\s*(enabled|adaptive)")
_REMINDER = re.compile(r"<(system-reminder|system-message)>.*?</\1>", re.DOTALL)


def _member(value: Any, key: str) -> Mapping[str, Any]:
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _current(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The current user message, or ``{}`` for a body that has none (rules switched off)."""
    return _member(_member(_member(body, "conversationState"), "currentMessage"), "userInputMessage")


def _result_text(result: Mapping[str, Any]) -> str:
    parts = []
    for item in _list(result.get("content")):
        if isinstance(item, Mapping):
            if isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif "json" in item:
                parts.append(json.dumps(item["json"], ensure_ascii=False))
    return "\n".join(parts)


def find_tool_directive(text: str, declared: set[str]) -> tuple[str, dict[str, Any]] | None:
    """The first ``[[tool:NAME {json}]]`` in ``text`` naming a declared tool, as (name, input)."""
    decoder = json.JSONDecoder()
    start = text.find(_DIRECTIVE)
    while start != -1:
        rest = text[start + len(_DIRECTIVE) :]
        match = re.match(r"([^\s\[\]{}]+)\s*", rest)
        if match and match.group(1) in declared:
            try:
                value, end = decoder.raw_decode(rest, match.end())
            except ValueError:
                value, end = None, 0
            if isinstance(value, dict) and rest[end:].lstrip().startswith("]]"):
                return match.group(1), value
        start = text.find(_DIRECTIVE, start + 1)
    return None


def _last_paragraph(text: str) -> str:
    cleaned = _REMINDER.sub("", text)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", cleaned) if p.strip()]
    said = paragraphs[-1] if paragraphs else cleaned.strip()
    return said if len(said) <= ECHO_LIMIT else said[: ECHO_LIMIT - 1] + "…"


def _deterministic_id(body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return "tooluse_" + digest[:22]


def smart_reply(body: Mapping[str, Any], *, chunks: int = 3) -> Reply:
    """A deterministic, sensible answer to any valid request body.

    - the current message carries toolResults: acknowledge them, quoting the first 80 characters;
    - the user text holds ``[[tool:NAME {json}]]`` and NAME is a declared tool: call it with that input;
    - thinking tags (``<thinking_mode>enabled|adaptive``) are in the prompt: a thinking reply;
    - otherwise echo the last paragraph of the user text: ``You said: ...``.
    """
    current = _current(body)
    context = _member(current, "userInputMessageContext")
    results = [r for r in _list(context.get("toolResults")) if isinstance(r, Mapping)]
    if results:
        lines = [f"Tool {r.get('toolUseId')} returned: {_result_text(r)[:RESULT_LIMIT]}" for r in results]
        return text_reply("\n".join(lines), chunks=chunks)
    content = current.get("content")
    text = content if isinstance(content, str) else ""
    specs = [_member(tool, "toolSpecification") for tool in _list(context.get("tools"))]
    declared = {spec["name"] for spec in specs if isinstance(spec.get("name"), str)}
    directive = find_tool_directive(text, declared)
    if directive is not None:
        name, arguments = directive
        return tool_reply(name, arguments, tool_use_id=_deterministic_id(body), text_before="On it.")
    said = _last_paragraph(text)
    if _THINKING_ON.search(json.dumps(body.get("conversationState"), ensure_ascii=False)):
        return thinking_reply(f"The user said: {said}", f"You said: {said}", chunks=chunks + 1)
    return text_reply(f"You said: {said}", chunks=chunks)
