"""One assistant turn: Kiro events in, neutral output events out (shared by the OpenAI and Anthropic layers).

:class:`TurnAssembler` is fed typed upstream events (:mod:`kiro_tray.protocol.kiro_events`) one at a time and
returns the neutral events they produce: block starts (text, thinking, tool_use), deltas, block stops.
The API layers only translate those into their wire format. Rules (kiro-protocol.md 3.4, 3.6, 4.2):

- Blocks open lazily; opening a block of another kind (or another tool call) closes the open one.
- Tool calls are keyed by ``toolUseId`` and streamed as they arrive: start on the first fragment,
  argument fragments as they come, stop on ``stop: true``; late fragments and duplicate stops for a
  closed call are ignored. A call that produced no arguments gets ``{}``. Upstream tool-name aliases
  are mapped back to the client's names.
- With thinking requested, ``<thinking>`` tags at the start of the text and ``reasoningContentEvent``
  text become thinking blocks; without it, reasoning events are dropped and text passes untouched.
- The gateway applies ``stop_sequences`` to text and ``max_tokens`` to the output estimate; either
  marks the turn :attr:`TurnAssembler.done` so the caller stops reading upstream. ``max_tokens`` is never
  applied in the middle of a tool call (the call is finished first).
- ``ContentLengthExceededException`` or ``contextUsagePercentage >= 100`` end the turn normally with
  ``max_tokens``; ``ThrottlingException`` raises :class:`UpstreamOverloaded`; any other exception frame
  raises :class:`UpstreamError`.
- :meth:`TurnAssembler.finish` at upstream EOF raises :class:`UpstreamError` if a tool call is still open: a
  cut stream must never look like a finished turn.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, assert_never

from .errors import GatewayError, UpstreamError, UpstreamOverloaded
from .kiro_events import (
    ContextUsageEvent,
    KiroEvent,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    ToolUseEvent,
    UnknownEvent,
    UpstreamExceptionEvent,
)
from .thinking import ThinkingSplitter
from .tokens import estimate_text_tokens, tokens_from_context_usage

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence"]
BlockKind = Literal["text", "thinking", "tool_use"]

CONTENT_LENGTH_EXCEEDED: Final = "ContentLengthExceededException"
THROTTLING: Final = "ThrottlingException"


@dataclass(frozen=True, slots=True)
class TurnParams:
    """What the API layers need to know about the request to shape the answer."""

    model: str  # as the client sent it
    input_tokens: int  # request estimate
    context_window: int = 200_000
    tool_names: Mapping[str, str] = field(default_factory=dict)  # upstream alias -> client name
    thinking: bool = False
    stop_sequences: tuple[str, ...] = ()
    max_tokens: int | None = None
    include_usage: bool = False  # OpenAI only


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """Estimated token usage (Kiro returns no token counts) and the credits Kiro metered."""

    input_tokens: int
    output_tokens: int
    credits: float | None


# --- neutral output events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextStart:
    kind: Literal["text_start"] = "text_start"


@dataclass(frozen=True, slots=True)
class ThinkingStart:
    kind: Literal["thinking_start"] = "thinking_start"


@dataclass(frozen=True, slots=True)
class ToolStart:
    """A tool call begins; ``name`` is the client's tool name."""

    tool_id: str
    name: str
    kind: Literal["tool_start"] = "tool_start"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str
    kind: Literal["thinking_delta"] = "thinking_delta"


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    """A raw fragment of the tool call's JSON arguments (fragments concatenate)."""

    fragment: str
    kind: Literal["tool_args_delta"] = "tool_args_delta"


@dataclass(frozen=True, slots=True)
class BlockStop:
    """The open block ends; ``signature`` is the upstream reasoning signature for thinking blocks."""

    block: BlockKind
    signature: str | None = None
    kind: Literal["block_stop"] = "block_stop"


TurnOutput = TextStart | ThinkingStart | ToolStart | TextDelta | ThinkingDelta | ToolArgsDelta | BlockStop


# --- helpers ---------------------------------------------------------------------------------------


class _TokenMeter:
    """Running output-token estimate; estimates in slices so per-fragment rounding does not add up."""

    __slots__ = ("_counted", "_pending")
    _SLICE: Final = 256

    def __init__(self) -> None:
        self._counted = 0
        self._pending = ""

    def add(self, text: str) -> None:
        self._pending += text
        if len(self._pending) >= self._SLICE:
            self._counted += estimate_text_tokens(self._pending)
            self._pending = ""

    @property
    def total(self) -> int:
        return self._counted + estimate_text_tokens(self._pending)


class _StopFilter:
    """Finds stop sequences in streamed text, holding back only a tail that could start one."""

    __slots__ = ("_held", "_sequences")

    def __init__(self, sequences: Iterable[str]) -> None:
        self._sequences = tuple(s for s in sequences if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Text safe to emit, and the stop sequence found (the text then ends right before it).

        Generation stops where a sequence is first *completed* (earliest end; on a tie the longer one).
        """
        buf = self._held + text
        best: tuple[int, int] | None = None
        found: str | None = None
        for seq in self._sequences:
            i = buf.find(seq)
            if i >= 0 and (best is None or (i + len(seq), i) < best):
                best, found = (i + len(seq), i), seq
        if best is not None:
            self._held = ""
            return buf[: best[1]], found
        keep = 0
        for seq in self._sequences:
            for k in range(min(len(seq) - 1, len(buf)), keep, -1):
                if buf.endswith(seq[:k]):
                    keep = k
                    break
        cut = len(buf) - keep
        self._held = buf[cut:]
        return buf[:cut], None

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


# --- the turn --------------------------------------------------------------------------------------


class TurnAssembler:
    """Assembles one assistant turn from Kiro events; see the module docstring for the rules."""

    def __init__(self, params: TurnParams) -> None:
        self.params = params
        self._splitter = ThinkingSplitter() if params.thinking else None
        self._stops = _StopFilter(params.stop_sequences) if params.stop_sequences else None
        self._out: list[TurnOutput] = []
        self._open: BlockKind | None = None
        self._tool_id = ""
        self._tool_name = ""
        self._tool_args: list[str] = []
        self._signature: str | None = None
        self._closed_tools: set[str] = set()
        self._blocks = 0
        self._answered = False
        self._tool_calls = 0
        self._meter = _TokenMeter()
        self._context_pct: float | None = None
        self._credits: float | None = None
        self._limit_hit = False
        self._stop_sequence: str | None = None
        self._done = False
        self._finished = False

    # -- state the API layers read --

    @property
    def done(self) -> bool:
        """The turn has ended early (stop sequence, max_tokens): stop reading upstream, then finish()."""
        return self._done

    @property
    def stop_reason(self) -> StopReason:
        if self._stop_sequence is not None:
            return "stop_sequence"
        if self._limit_hit or (self._context_pct is not None and self._context_pct >= 100):
            return "max_tokens"
        return "tool_use" if self._tool_calls else "end_turn"

    @property
    def stop_sequence(self) -> str | None:
        """The stop sequence that ended the turn, if one did."""
        return self._stop_sequence

    @property
    def input_tokens(self) -> int:
        """From ``contextUsagePercentage`` x context window once known, else the request estimate."""
        if self._context_pct is not None:
            derived = tokens_from_context_usage(self._context_pct, self.params.context_window)
            if derived > 0:
                return derived
        return self.params.input_tokens

    @property
    def output_tokens(self) -> int:
        """Estimated tokens of text, thinking and tool arguments produced so far."""
        return self._meter.total

    @property
    def usage(self) -> TurnUsage:
        return TurnUsage(self.input_tokens, self.output_tokens, self._credits)

    @property
    def credits(self) -> float | None:
        """Sum of ``meteringEvent`` usage; None when Kiro metered nothing."""
        return self._credits

    @property
    def looks_complete(self) -> bool:
        """Kiro sent its end-of-turn bookkeeping (context usage or metering), or the turn ended early.

        A stream without either is likely truncated upstream (kiro-protocol.md 4.2).
        """
        return self._context_pct is not None or self._credits is not None or self._done

    @property
    def is_empty(self) -> bool:
        """No block at all was produced."""
        return self._blocks == 0

    @property
    def tool_calls(self) -> int:
        return self._tool_calls

    @property
    def has_answer(self) -> bool:
        """A text block or a tool call was produced (thinking alone is no answer)."""
        return self._answered

    # -- feeding --

    def feed(self, event: KiroEvent) -> list[TurnOutput]:
        """Outputs for one upstream event; raises UpstreamError/UpstreamOverloaded for exception frames."""
        out = self._out = []
        match event:
            case TextEvent(content=content):
                if not self._done and content:
                    self._on_text(content)
            case ToolUseEvent():
                if not self._done:
                    self._on_tool(event)
            case ReasoningEvent(text=text, signature=signature):
                if not self._done and self._splitter is not None:
                    self._flush_held_text()
                    self._thinking(text, signature)
            case ContextUsageEvent(percentage=percentage):
                self._context_pct = percentage
            case MeteringEvent(usage=usage):
                self._credits = (self._credits or 0.0) + usage
            case UpstreamExceptionEvent():
                self._on_exception(event)
            case UnknownEvent():
                pass
            case _:
                assert_never(event)
        self._check_limit()
        return out

    def finish(self) -> list[TurnOutput]:
        """Outputs at upstream EOF (or after :attr:`done`); raises UpstreamError for a cut tool call."""
        out = self._out = []
        if self._open == "tool_use":  # raised again on every call: a cut stream never finishes
            raise UpstreamError("upstream stream ended in the middle of a tool call")
        if self._finished:
            return out
        self._finished = True
        if self._stop_sequence is None:
            if self._splitter is not None:
                self._route_pieces(self._splitter.flush())
            self._flush_held_text()
        self._close_open()
        return out

    # -- internals --

    def _on_text(self, content: str) -> None:
        if self._splitter is None:
            self._text(content)
        else:
            self._route_pieces(self._splitter.feed(content))

    def _route_pieces(self, pieces: Iterable[tuple[Literal["thinking", "text"], str]]) -> None:
        for kind, piece in pieces:
            if self._stop_sequence is not None:
                return
            if kind == "thinking":
                self._thinking(piece, None)
            else:
                self._text(piece)

    def _text(self, text: str) -> None:
        found: str | None = None
        if self._stops is not None:
            text, found = self._stops.feed(text)
        if text:
            self._ensure_open("text")
            self._out.append(TextDelta(text))
            self._meter.add(text)
        if found is not None:
            self._stop_sequence = found
            self._done = True

    def _flush_held_text(self) -> None:
        if self._stops is not None:
            held = self._stops.flush()
            if held:
                self._ensure_open("text")
                self._out.append(TextDelta(held))
                self._meter.add(held)

    def _thinking(self, text: str, signature: str | None) -> None:
        if text:
            self._ensure_open("thinking")
            self._out.append(ThinkingDelta(text))
            self._meter.add(text)
        if signature and self._open == "thinking":
            self._signature = signature

    def _on_tool(self, event: ToolUseEvent) -> None:
        tool_id = event.tool_use_id
        if not tool_id:
            if self._open == "tool_use":
                tool_id = self._tool_id
            elif event.input or event.name:
                tool_id = f"tooluse_{uuid.uuid4().hex}"
            else:
                return
        if tool_id in self._closed_tools:
            return  # a late fragment or a duplicate stop for a finished call
        if self._open != "tool_use" or self._tool_id != tool_id:
            self._flush_held_text()
            self._close_open()
            self._open = "tool_use"
            self._tool_id = tool_id
            self._tool_name = self.params.tool_names.get(event.name, event.name)
            self._tool_args = []
            self._blocks += 1
            self._answered = True
            self._tool_calls += 1
            self._out.append(ToolStart(tool_id, self._tool_name))
        if event.input:
            self._tool_args.append(event.input)
            self._out.append(ToolArgsDelta(event.input))
            self._meter.add(event.input)
        if event.stop:
            self._close_open()

    def _on_exception(self, event: UpstreamExceptionEvent) -> None:
        if event.exception_type == CONTENT_LENGTH_EXCEEDED:
            self._flush_held_text()
            self._close_open()
            self._limit_hit = True
            self._done = True
            return
        detail = f"Kiro upstream error ({event.exception_type}): {event.message or 'no message'}"
        if event.exception_type == THROTTLING:
            raise UpstreamOverloaded(detail)
        raise UpstreamError(detail)

    def _check_limit(self) -> None:
        limit = self.params.max_tokens
        if limit is None or self._done or self._open == "tool_use":
            return
        if self._meter.total > limit:
            self._limit_hit = True
            self._done = True

    def _ensure_open(self, kind: Literal["text", "thinking"]) -> None:
        if self._open == kind:
            return
        self._close_open()
        self._open = kind
        self._blocks += 1
        if kind == "text":
            self._answered = True
            self._out.append(TextStart())
        else:
            self._signature = None
            self._out.append(ThinkingStart())

    def _close_open(self) -> None:
        kind = self._open
        if kind is None:
            return
        self._open = None
        if kind == "tool_use":
            self._closed_tools.add(self._tool_id)
            if not self._tool_args:
                self._out.append(ToolArgsDelta("{}"))
            elif not _is_json_object("".join(self._tool_args)):
                # Kiro cuts long tool inputs yet still says stop: a call that cannot run is an error,
                # never a normal tool_use / tool_calls finish.
                raise UpstreamError(
                    f"Kiro sent incomplete arguments for the {self._tool_name!r} tool call (cut JSON)."
                )
            self._out.append(BlockStop("tool_use"))
        elif kind == "thinking":
            self._out.append(BlockStop("thinking", self._signature))
        else:
            self._out.append(BlockStop("text"))


# --- accumulation for the non-streaming collectors ---------------------------------------------------


@dataclass(slots=True)
class CollectedBlock:
    """One finished block of a non-streamed turn; ``text`` is the arguments JSON for tool calls."""

    kind: BlockKind
    parts: list[str] = field(default_factory=list)
    tool_id: str = ""
    name: str = ""
    signature: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


class BlockCollector:
    """Accumulates neutral outputs into whole blocks."""

    __slots__ = ("blocks",)

    def __init__(self) -> None:
        self.blocks: list[CollectedBlock] = []

    def add(self, outputs: Iterable[TurnOutput]) -> None:
        for item in outputs:
            match item:
                case TextStart():
                    self.blocks.append(CollectedBlock("text"))
                case ThinkingStart():
                    self.blocks.append(CollectedBlock("thinking"))
                case ToolStart(tool_id=tool_id, name=name):
                    self.blocks.append(CollectedBlock("tool_use", tool_id=tool_id, name=name))
                case TextDelta(text=text) | ThinkingDelta(text=text):
                    self.blocks[-1].parts.append(text)
                case ToolArgsDelta(fragment=fragment):
                    self.blocks[-1].parts.append(fragment)
                case BlockStop(signature=signature):
                    self.blocks[-1].signature = signature
                case _:
                    assert_never(item)


class TurnDriven:
    """What every API builder shares: the :class:`TurnAssembler` it runs, and where its outputs go.

    Streamed (the default), ``feed`` and ``finish`` return the API's encoded events. Collected
    (``collect=True``), the very same outputs, closing rules included, accumulate into blocks and
    ``result()`` shapes them into one response body, the way an SDK accumulates a stream into its final
    message. Subclasses implement ``_encode`` (one output to bytes), ``_closing`` (what ends the turn on the
    wire) and ``result``."""

    def __init__(self, params: TurnParams, *, collect: bool = False) -> None:
        self.params = params
        self._turn = TurnAssembler(params)
        self._blocks: BlockCollector | None = BlockCollector() if collect else None
        self._finished = False

    @property
    def done(self) -> bool:
        """Stop reading upstream (stop sequence or max_tokens reached); then finish."""
        return self._turn.done

    @property
    def usage(self) -> TurnUsage:
        return self._turn.usage

    @property
    def turn(self) -> TurnAssembler:
        return self._turn

    def feed(self, event: KiroEvent) -> bytes:
        """Bytes to send for one upstream event (nothing when collecting); raises GatewayError for
        upstream failures."""
        outputs = self._turn.feed(event)
        return self._emit(outputs) if outputs else b""

    def finish(self) -> bytes:
        """The end of the turn at upstream EOF (or after :attr:`done`); idempotent."""
        if self._finished:
            return b""
        outputs = self._turn.finish()
        self._finished = True
        return self._emit(outputs) + self._closing()

    def _emit(self, outputs: list[TurnOutput]) -> bytes:
        if self._blocks is not None:
            self._blocks.add(outputs)
            return b""
        return b"".join([self._encode(item) for item in outputs])

    def start(self) -> bytes:
        """The first bytes of a streamed answer."""
        raise NotImplementedError

    def fail(self, err: GatewayError) -> bytes:
        """The API's error event, for a failure after the stream began."""
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        """The response body the collected outputs make."""
        raise NotImplementedError

    def _encode(self, item: TurnOutput) -> bytes:
        raise NotImplementedError

    def _closing(self) -> bytes:
        raise NotImplementedError

    def finished_blocks(self) -> list[CollectedBlock]:
        """Ends the turn (raising its GatewayError if it failed) and returns every collected block."""
        if self._blocks is None:
            raise RuntimeError("this builder streams; create it with collect=True to collect")
        self.finish()
        return self._blocks.blocks


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def parse_tool_input(block: CollectedBlock) -> dict[str, Any]:
    """A collected tool call's arguments as an object; JSON that does not parse means the upstream
    stream was cut, which is an error (never silently ``{}``)."""
    try:
        value = json.loads(block.text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamError(f"upstream sent incomplete arguments for tool call {block.name!r}")
    return value
