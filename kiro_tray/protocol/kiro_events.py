"""Typed events decoded from Kiro's event stream (kiro-protocol.md 3.2).

Every frame becomes exactly one event of a tagged union; consumers dispatch on ``kind`` with
``assert_never`` so a new event type cannot be forgotten silently. Unknown event types become
:class:`UnknownEvent` (tolerated and counted); ``exception``/``error`` frames become
:class:`UpstreamExceptionEvent`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from .eventstream import Frame, FrameDecoder


@dataclass(frozen=True, slots=True)
class TextEvent:
    """``assistantResponseEvent``: a chunk of assistant text."""

    content: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolUseEvent:
    """``toolUseEvent``: one fragment of a tool call; ``input`` fragments concatenate until ``stop``."""

    tool_use_id: str
    name: str
    input: str
    stop: bool
    kind: Literal["tool_use"] = "tool_use"


@dataclass(frozen=True, slots=True)
class ReasoningEvent:
    """``reasoningContentEvent``: native reasoning text (with an opaque signature)."""

    text: str
    signature: str | None
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ContextUsageEvent:
    """``contextUsageEvent``: how full the context window is, in percent."""

    percentage: float
    kind: Literal["context_usage"] = "context_usage"


@dataclass(frozen=True, slots=True)
class MeteringEvent:
    """``meteringEvent``: credits charged for this turn."""

    usage: float
    unit: str | None
    kind: Literal["metering"] = "metering"


@dataclass(frozen=True, slots=True)
class UpstreamExceptionEvent:
    """An ``exception`` or ``error`` frame inside a 200 stream."""

    exception_type: str
    message: str
    kind: Literal["exception"] = "exception"


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """Any event type we do not interpret (followupPromptEvent, codeEvent, ...)."""

    event_type: str
    kind: Literal["unknown"] = "unknown"


KiroEvent = (
    TextEvent
    | ToolUseEvent
    | ReasoningEvent
    | ContextUsageEvent
    | MeteringEvent
    | UpstreamExceptionEvent
    | UnknownEvent
)


def _json_object(payload: bytes) -> dict[str, Any]:
    if not payload:
        return {}
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


#: Larger numbers are not plausible credits or percentages; they (and NaN/Infinity) are ignored.
_PLAUSIBLE = 1e9


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= _PLAUSIBLE else None


def event_from_frame(frame: Frame) -> KiroEvent:
    message_type = frame.message_type
    body = _json_object(frame.payload)
    if message_type in ("exception", "error"):
        kind = (
            frame.header(":exception-type")
            or frame.header(":error-code")
            or _str(body.get("__type"))
            or "UnknownException"
        )
        message = _str(body.get("message")) or frame.header(":error-message") or ""
        if not message and frame.payload and not body:
            message = frame.payload.decode("utf-8", errors="replace")
        return UpstreamExceptionEvent(kind, message)

    event_type = frame.event_type or ""
    if event_type == "assistantResponseEvent":
        if "followupPrompt" in body and "content" not in body:
            return UnknownEvent(event_type)
        return TextEvent(_str(body.get("content")))
    if event_type == "toolUseEvent":
        raw_input = body.get("input")
        if isinstance(raw_input, dict | list):
            raw_input = json.dumps(raw_input, ensure_ascii=False)
        return ToolUseEvent(
            tool_use_id=_str(body.get("toolUseId")),
            name=_str(body.get("name")),
            input=_str(raw_input),
            stop=body.get("stop") is True,
        )
    if event_type == "reasoningContentEvent":
        signature = body.get("signature")
        return ReasoningEvent(_str(body.get("text")), signature if isinstance(signature, str) else None)
    if event_type == "contextUsageEvent":
        pct = _float(body.get("contextUsagePercentage"))
        if pct is not None:
            return ContextUsageEvent(pct)
    if event_type == "meteringEvent":
        usage = _float(body.get("usage"))
        if usage is not None:
            unit = body.get("unit")
            return MeteringEvent(usage, unit if isinstance(unit, str) else None)
    return UnknownEvent(event_type or "<none>")


@dataclass(slots=True)
class KiroEventDecoder:
    """Bytes in, typed events out; counts event types it does not interpret."""

    frames: FrameDecoder = field(default_factory=FrameDecoder)
    unknown: Counter[str] = field(default_factory=Counter)

    def feed(self, data: bytes) -> list[KiroEvent]:
        events: list[KiroEvent] = []
        for frame in self.frames.feed(data):
            event = event_from_frame(frame)
            if isinstance(event, UnknownEvent):
                self.unknown[event.event_type] += 1
            events.append(event)
        return events

    @property
    def pending(self) -> int:
        return self.frames.pending
