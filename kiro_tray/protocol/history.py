"""History repair: make any client conversation acceptable to Kiro (kiro-protocol.md 2.6 to 2.9).

Kiro answers every violation below with the same opaque ``400 Improperly formed request``, so each
known cause has one named, pure rule ``(turns) -> (turns, changed)``. :func:`repair_history` runs them
in a fixed order (later rules rely on earlier ones), then declares tools the history needs, and
reports the names of the rules that changed something. After it:

- turns alternate strictly, start with a user turn and end with a user turn (the current message);
- every tool result answers a tool call in the assistant turn right before it, and every tool call in
  history is answered in the user turn right after it; ids are unique;
- no turn, text or tool result is empty; tool inputs have no empty keys;
- every tool name used in history is declared.

Rendering (``kiro_payload``) guarantees the rest: no empty ``toolUses``/``images`` arrays, tools only on
the current message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, assert_never

from .conversation import ImagePart, Part, TextPart, ThinkingPart, Tool, ToolResultPart, ToolUsePart, Turn

logger = logging.getLogger("kiro_tray.protocol")

Turns = tuple[Turn, ...]

PLACEHOLDER = "(empty)"
TOOL_RESULTS_PLACEHOLDER = "Tool results provided."
EMPTY_RESULT = "(empty result)"
CONTINUE = "Continue"
HISTORY_TOOL_DESCRIPTION = (
    "Placeholder for a tool used earlier in this conversation. It is not available now: do not call it."
)


def _changed(old: Turns, new: Iterable[Turn]) -> tuple[Turns, bool]:
    result = tuple(new)
    return result, result != old


def _tool_use_text(part: ToolUsePart) -> str:
    return f"[Tool call {part.name} ({part.id})]\n{json.dumps(part.input, ensure_ascii=False)}"


def _tool_result_text(part: ToolResultPart) -> str:
    label = "Tool error" if part.is_error else "Tool result"
    return f"[{label} ({part.tool_use_id})]\n{part.content}"


def _result_as_parts(part: ToolResultPart) -> list[Part]:
    """A tool result as plain content: its text, then its images."""
    return [TextPart(_tool_result_text(part)), *part.images]


def fold_thinking(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 9: earlier reasoning goes back as ``<thinking>...</thinking>`` text (empty: dropped)."""

    def fold(turn: Turn) -> Turn:
        parts: list[Part] = []
        for part in turn.parts:
            if isinstance(part, ThinkingPart):
                if part.text.strip():
                    parts.append(TextPart(f"<thinking>{part.text}</thinking>"))
            else:
                parts.append(part)
        return replace(turn, parts=tuple(parts))

    return _changed(turns, map(fold, turns))


def move_misplaced_parts(turns: Turns) -> tuple[Turns, bool]:
    """Kiro's user messages carry no tool calls and its assistant messages no results or images:
    such parts (which no client API produces) become text, so nothing is lost or rejected."""

    def fix(turn: Turn) -> Turn:
        parts: list[Part] = []
        for part in turn.parts:
            match part:
                case ToolUsePart() if turn.role == "user":
                    parts.append(TextPart(_tool_use_text(part)))
                case ToolResultPart() if turn.role == "assistant":
                    parts.append(TextPart(_tool_result_text(part)))
                    if part.images:
                        parts.append(TextPart(f"[{len(part.images)} image(s) omitted]"))
                case ImagePart() if turn.role == "assistant":
                    parts.append(TextPart("[image omitted]"))
                case TextPart() | ImagePart() | ToolUsePart() | ToolResultPart() | ThinkingPart():
                    parts.append(part)
                case _:
                    assert_never(part)
        return replace(turn, parts=tuple(parts))

    return _changed(turns, map(fix, turns))


def merge_same_role(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 2: strict alternation. Adjacent turns of one role (e.g. two assistant turns left by an
    interrupted Claude Code stream) become one turn with their parts concatenated; empty turns vanish."""
    merged: list[Turn] = []
    for turn in turns:
        if not turn.parts:
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = replace(merged[-1], parts=merged[-1].parts + turn.parts)
        else:
            merged.append(turn)
    return _changed(turns, merged)


def ensure_user_last(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 3: the current message is a user turn. A trailing assistant turn (a prefill) moves into
    history and ``Continue`` is sent; a bare ``{`` JSON prefill is dropped instead."""
    if not turns or turns[-1].role == "user":
        return turns, False
    last = turns[-1]
    if all(isinstance(p, TextPart) for p in last.parts) and last.text().strip() == "{":
        return turns[:-1], True
    return (*turns, Turn("user", (TextPart(CONTINUE),))), True


def ensure_user_first(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 1: history starts with a user turn; a placeholder user turn is put in front of a
    leading assistant turn (rather than dropping it, which would orphan its tool calls' results)."""
    if turns and turns[0].role == "user":
        return turns, False
    return (Turn("user", (TextPart(PLACEHOLDER),)), *turns), True


def dedupe_tool_ids(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 5: a tool call id is used once in the whole conversation and answered at most once per
    turn (AIClient PR 94); later duplicates are dropped."""
    seen_uses: set[str] = set()

    def dedupe(turn: Turn) -> Turn:
        seen_results: set[str] = set()
        parts: list[Part] = []
        for part in turn.parts:
            if isinstance(part, ToolUsePart):
                if part.id in seen_uses:
                    continue
                seen_uses.add(part.id)
            elif isinstance(part, ToolResultPart):
                if part.tool_use_id in seen_results:
                    continue
                seen_results.add(part.tool_use_id)
            parts.append(part)
        return replace(turn, parts=tuple(parts))

    return _changed(turns, [dedupe(t) for t in turns])


def orphan_results_to_text(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 5: a tool result must answer a call in the assistant turn right before it. Orphans
    (their call was trimmed, or never existed) become plain text so the information stays."""
    out: list[Turn] = []
    for index, turn in enumerate(turns):
        if turn.role != "user":
            out.append(turn)
            continue
        previous = turns[index - 1] if index > 0 else None
        calls = {p.id for p in previous.parts if isinstance(p, ToolUsePart)} if previous else set()
        parts: list[Part] = []
        for part in turn.parts:
            if isinstance(part, ToolResultPart) and part.tool_use_id not in calls:
                parts.extend(_result_as_parts(part))
            else:
                parts.append(part)
        out.append(replace(turn, parts=tuple(parts)))
    return _changed(turns, out)


def drop_unanswered_tool_uses(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 5: a tool call in history needs its result in the next user turn; calls without one
    (an interrupted agent step, a prefill) are removed (kiro.rs ``remove_orphaned_tool_uses``)."""
    out: list[Turn] = []
    for index, turn in enumerate(turns):
        if turn.role != "assistant":
            out.append(turn)
            continue
        following = turns[index + 1] if index + 1 < len(turns) else None
        answered = (
            {p.tool_use_id for p in following.parts if isinstance(p, ToolResultPart)} if following else set()
        )
        parts = tuple(p for p in turn.parts if not isinstance(p, ToolUsePart) or p.id in answered)
        out.append(replace(turn, parts=parts))
    return _changed(turns, out)


def _strip_empty_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_empty_keys(v) for k, v in value.items() if k != ""}
    if isinstance(value, list):
        return [_strip_empty_keys(v) for v in value]
    return value


def strip_empty_input_keys(turns: Turns) -> tuple[Turns, bool]:
    """2.6 rule 8: tool inputs with empty-string keys (``{"": ...}``) are rejected; such keys are removed."""

    def strip(turn: Turn) -> Turn:
        parts = tuple(
            replace(p, input=_strip_empty_keys(p.input)) if isinstance(p, ToolUsePart) else p
            for p in turn.parts
        )
        return replace(turn, parts=parts)

    return _changed(turns, map(strip, turns))


def fill_empty_text(turns: Turns) -> tuple[Turns, bool]:
    """2.7: Kiro rejects empty strings. Blank text parts are removed, blank tool results say
    ``(empty result)``, and a turn whose text is blank gets a placeholder (``Tool results provided.``
    for a user turn that only carries results, ``(empty)`` otherwise)."""

    def fill(turn: Turn) -> Turn:
        parts: list[Part] = []
        for part in turn.parts:
            if isinstance(part, TextPart) and not part.text.strip():
                continue
            if isinstance(part, ToolResultPart) and not part.content.strip():
                part = replace(part, content=EMPTY_RESULT)
            parts.append(part)
        if not any(isinstance(p, TextPart) for p in parts):
            has_results = any(isinstance(p, ToolResultPart) for p in parts)
            placeholder = TOOL_RESULTS_PLACEHOLDER if turn.role == "user" and has_results else PLACEHOLDER
            parts.append(TextPart(placeholder))
        return replace(turn, parts=tuple(parts))

    return _changed(turns, map(fill, turns))


TurnRule = Callable[[Turns], tuple[Turns, bool]]

#: The turn rules in the order they must run.
TURN_RULES: tuple[TurnRule, ...] = (
    fold_thinking,
    move_misplaced_parts,
    merge_same_role,
    ensure_user_last,
    ensure_user_first,
    dedupe_tool_ids,
    orphan_results_to_text,
    drop_unanswered_tool_uses,
    strip_empty_input_keys,
    fill_empty_text,
)


def declare_history_tools(turns: Turns, tools: tuple[Tool, ...]) -> tuple[Turns, tuple[Tool, ...], bool]:
    """2.6 rule 6: tool calls in history need a declared tool of that name (else ``TOOL_CONFIG_MISSING``).

    Chosen fix: keep the structured calls and declare a placeholder tool for every undeclared name
    (kiro.rs), whose description tells the model not to call it. Turning calls into text instead
    (jwadow) teaches the model to write tool calls as prose, and broke OpenCode's compaction. Names
    match case-insensitively; a call spelled differently from its declared tool takes the declared
    spelling, so no two tools differ only in case.
    """
    canonical: dict[str, str] = {}
    for tool in tools:
        canonical.setdefault(tool.name.lower(), tool.name)
    added: list[Tool] = []

    def declare(part: Part) -> Part:
        if not isinstance(part, ToolUsePart):
            return part
        key = part.name.lower()
        if key not in canonical:
            canonical[key] = part.name
            added.append(Tool(part.name, HISTORY_TOOL_DESCRIPTION, {"type": "object", "properties": {}}))
        name = canonical[key]
        return part if name == part.name else replace(part, name=name)

    new_turns, renamed = _changed(turns, [replace(t, parts=tuple(map(declare, t.parts))) for t in turns])
    return new_turns, (*tools, *added), renamed or bool(added)


@dataclass(frozen=True, slots=True)
class RepairResult:
    turns: Turns
    tools: tuple[Tool, ...]
    applied: tuple[str, ...]


def repair_history(turns: Turns, tools: tuple[Tool, ...] = ()) -> RepairResult:
    """Run every rule; return the repaired turns (last one = current message), the tools to declare,
    and the names of the rules that changed something (each logged at DEBUG)."""
    applied: list[str] = []
    for rule in TURN_RULES:
        turns, changed = rule(turns)
        if changed:
            applied.append(rule.__name__)
    turns, tools, changed = declare_history_tools(turns, tools)
    if changed:
        applied.append(declare_history_tools.__name__)
    for name in applied:
        logger.debug("history repair applied: %s", name)
    return RepairResult(turns, tools, tuple(applied))
