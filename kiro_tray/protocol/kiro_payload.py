"""Neutral conversation -> Kiro ``generateAssistantResponse`` body (kiro-protocol.md 2.3 to 2.11).

The pipeline is ``client body -> Conversation -> repair_history -> render -> size check``:

- ``conversationState`` with ``chatTriggerType: MANUAL``, a ``conversationId`` (the client's session
  uuid when it has one, else a fresh uuid), ``currentMessage.userInputMessage`` and ``history``;
  ``profileArn`` is left to the upstream client. Empty arrays and objects are omitted.
- Kiro has no system field: the system text goes in front of the first user message (2.5), preceded by
  thinking tags only when the client asked for thinking (2.10, generation 1), and followed by
  instructions Kiro has no field for (tool choice, one tool per reply) and by overlong tool docs.
- Tools (2.8) are declared on the current message only; names over 64 characters are aliased to
  ``{prefix}_{8 hex of sha256}`` and mapped back via ``KiroRequest.tool_names``; descriptions over
  10,000 characters move into the system text; schemas are sanitised.
- Images (2.9) go in ``userInputMessage.images``, including images returned inside tool results.
- Size (2.11): above ``payload_budget_bytes`` of JSON the oldest history turn pairs are dropped
  (re-repairing the rest) or, with trimming off, :class:`~kiro_tray.protocol.errors.ContextTooLong` is raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from .conversation import (
    Conversation,
    ImagePart,
    TextPart,
    ThinkingAdaptive,
    ThinkingEnabled,
    ThinkingOff,
    ThinkingPart,
    ThinkingRequest,
    Tool,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultPart,
    ToolUsePart,
    Turn,
    estimate_conversation_tokens,
)
from .errors import ContextTooLong
from .history import repair_history
from .models import context_window, resolve_model

logger = logging.getLogger("kiro_tray.protocol")

ORIGIN = "AI_EDITOR"
DEFAULT_PAYLOAD_BUDGET = 600_000
TOOL_NAME_LIMIT = 64
TOOL_DESCRIPTION_LIMIT = 10_000
THINKING_BUDGET_MIN = 1_024
THINKING_BUDGET_MAX = 24_576
#: Budget for thinking turned on by a ``-thinking`` model name (kiro.rs uses the same).
SUFFIX_THINKING_BUDGET = 20_000
THINKING_NOTE = (
    "The thinking_mode tags above were set by the user's client, not injected: when thinking is on, "
    "reason step by step inside <thinking>...</thinking> before the answer."
)
HISTORY_TRIMMED = "history_trimmed"


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    payload_budget_bytes: int = DEFAULT_PAYLOAD_BUDGET
    trim_history: bool = True
    fetched_images: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # url -> (media_type, b64)


@dataclass(frozen=True, slots=True)
class KiroRequest:
    payload: dict[str, Any]  # JSON body for generateAssistantResponse, without profileArn
    model: str  # the model name exactly as the client sent it (echoed in responses)
    kiro_model_id: str
    tool_names: Mapping[str, str]  # upstream alias -> client's original tool name (aliased names only)
    repairs: tuple[str, ...]  # history rules applied, by name
    dropped_tools: tuple[str, ...]  # server tools dropped
    input_tokens: int  # estimate (system + messages + tools + images)
    thinking: bool  # the client asked for thinking
    stop_sequences: tuple[str, ...]
    max_tokens: int | None
    context_window: int
    stream: bool
    include_usage: bool  # OpenAI stream_options.include_usage


# --- tools -------------------------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "not", "if", "then", "else", "contains", "propertyNames", "additionalItems")
_SCHEMA_DROPPED = ("additionalProperties", "$schema")


def _sanitize_node(node: Any) -> Any:
    if isinstance(node, list):
        return [_sanitize_node(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_DROPPED or value is None:
            continue
        if key in _SCHEMA_MAPS:
            if isinstance(value, dict):
                out[key] = {name: {} if sub is None else _sanitize_node(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            if isinstance(value, list):
                out[key] = [_sanitize_node(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = _sanitize_node(value)
        elif key == "required":
            names = [n for n in value if isinstance(n, str)] if isinstance(value, list) else []
            if names:
                out[key] = names
        elif key == "type":
            if isinstance(value, str) or (isinstance(value, list) and all(isinstance(t, str) for t in value)):
                out[key] = value
        else:
            out[key] = value
    return out


def sanitize_schema(schema: Any) -> dict[str, Any]:
    """2.8: null or malformed ``properties``/``required``/``type`` are coerced or removed, and
    ``additionalProperties``, ``$schema`` and empty ``required`` dropped, at every level; the top level is
    always ``{"type": "object", "properties": {...}}``."""
    clean = _sanitize_node(schema) if isinstance(schema, dict) else {}
    clean["type"] = "object"
    if not isinstance(clean.get("properties"), dict):
        clean["properties"] = {}
    return clean


def tool_alias(name: str) -> str:
    """2.8: names over 64 characters become ``{first 55}_{8 hex of sha256}`` (64 characters)."""
    if len(name) <= TOOL_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[: TOOL_NAME_LIMIT - 9]}_{digest}"


@dataclass(frozen=True, slots=True)
class _Tools:
    specs: tuple[dict[str, Any], ...]
    upstream_names: Mapping[str, str]  # original -> name sent upstream
    docs: tuple[str, ...]  # system-text sections holding overlong descriptions


def _prepare_tools(tools: tuple[Tool, ...]) -> _Tools:
    specs: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    docs: list[str] = []
    seen: set[str] = set()
    for tool in tools:
        if tool.name.lower() in seen:
            continue
        seen.add(tool.name.lower())
        upstream = names[tool.name] = tool_alias(tool.name)
        description = tool.description.strip() or f"Tool: {upstream}"
        if len(description) > TOOL_DESCRIPTION_LIMIT:
            docs.append(f"## Tool: {upstream}\n{description}")
            description = f"[Full documentation in system prompt under '## Tool: {upstream}']"
        spec = {
            "name": upstream,
            "description": description,
            "inputSchema": {"json": sanitize_schema(tool.schema)},
        }
        specs.append({"toolSpecification": spec})
    return _Tools(tuple(specs), names, tuple(docs))


# --- system text -------------------------------------------------------------------------------------


def effective_thinking(conversation: Conversation, suffix_thinking: bool) -> ThinkingRequest:
    """The client's thinking request; a ``-thinking`` model name turns it on when the body did not."""
    if isinstance(conversation.thinking, ThinkingOff) and suffix_thinking:
        return ThinkingEnabled(SUFFIX_THINKING_BUDGET)
    return conversation.thinking


def thinking_tags(thinking: ThinkingRequest) -> str:
    """2.10 generation 1: the prompt tags that make the model think; empty when thinking is off."""
    match thinking:
        case ThinkingOff():
            return ""
        case ThinkingEnabled():
            budget = min(max(thinking.budget_tokens, THINKING_BUDGET_MIN), THINKING_BUDGET_MAX)
            return (
                f"<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
            )
        case ThinkingAdaptive():
            return (
                f"<thinking_mode>adaptive</thinking_mode><thinking_effort>{thinking.effort}</thinking_effort>"
            )
        case _:
            assert_never(thinking)


def _tool_instructions(conversation: Conversation, tools: _Tools) -> list[str]:
    """What ``tool_choice``/``parallel_tool_calls`` ask for, as instructions (Kiro has no field)."""
    if not tools.specs:
        return []
    notes: list[str] = []
    choice = conversation.tool_choice
    match choice:
        case ToolChoiceAuto():
            pass
        case ToolChoiceNone():
            notes.append("In your next reply do not call any tool; answer with text only.")
        case ToolChoiceAny():
            notes.append("In your next reply you must call at least one of the available tools.")
        case ToolChoiceTool():
            name = tools.upstream_names.get(choice.name, choice.name)
            notes.append(f"In your next reply you must call the tool `{name}`.")
        case _:
            assert_never(choice)
    if not conversation.parallel_tool_calls:
        notes.append("Call at most one tool per reply.")
    return notes


def _system_prefix(conversation: Conversation, thinking: ThinkingRequest, tools: _Tools) -> str:
    sections: list[str] = []
    if tags := thinking_tags(thinking):
        sections.append(f"{tags}\n{THINKING_NOTE}")
    if conversation.system.strip():
        sections.append(conversation.system)
    sections.extend(_tool_instructions(conversation, tools))
    sections.extend(tools.docs)
    return "\n\n".join(sections)


# --- rendering ---------------------------------------------------------------------------------------


def _image(image: ImagePart) -> dict[str, Any]:
    return {"format": image.media_type.removeprefix("image/"), "source": {"bytes": image.data}}


def _user_message(
    turn: Turn, model_id: str, prefix: str, specs: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in turn.parts:
        match part:
            case ImagePart():
                images.append(_image(part))
            case ToolResultPart():
                results.append(
                    {
                        "toolUseId": part.tool_use_id,
                        "content": [{"text": part.content}],
                        "status": "error" if part.is_error else "success",
                    }
                )
                images.extend(_image(i) for i in part.images)
            case TextPart() | ToolUsePart() | ThinkingPart():
                pass  # text is joined below; repair leaves no tool uses or thinking in user turns
            case _:
                assert_never(part)
    content = turn.text()
    message: dict[str, Any] = {
        "content": f"{prefix}\n\n{content}" if prefix else content,
        "modelId": model_id,
        "origin": ORIGIN,
    }
    if images:
        message["images"] = images
    context: dict[str, Any] = {}
    if specs:
        context["tools"] = list(specs)
    if results:
        context["toolResults"] = results
    if context:
        message["userInputMessageContext"] = context
    return {"userInputMessage": message}


def _assistant_message(turn: Turn, names: Mapping[str, str]) -> dict[str, Any]:
    uses = [
        {"toolUseId": p.id, "name": names.get(p.name, p.name), "input": p.input}
        for p in turn.parts
        if isinstance(p, ToolUsePart)
    ]
    message: dict[str, Any] = {"content": turn.text()}
    if uses:
        message["toolUses"] = uses
    return {"assistantResponseMessage": message}


def _render(
    turns: tuple[Turn, ...], prefix: str, tools: _Tools, model_id: str, conversation_id: str
) -> dict[str, Any]:
    """Repaired turns (alternating, user first and last) -> the request body."""
    history: list[dict[str, Any]] = []
    for index, turn in enumerate(turns[:-1]):
        if turn.role == "user":
            history.append(_user_message(turn, model_id, prefix if index == 0 else "", ()))
        else:
            history.append(_assistant_message(turn, tools.upstream_names))
    current = _user_message(turns[-1], model_id, "" if history else prefix, tools.specs)
    state: dict[str, Any] = {
        "chatTriggerType": "MANUAL",
        "conversationId": conversation_id,
        "currentMessage": current,
    }
    if history:
        state["history"] = history
    return {"conversationState": state}


def payload_size(payload: Any) -> int:
    """Bytes of ``json.dumps(payload)`` (ASCII-escaped, default separators: an upper bound)."""
    return len(json.dumps(payload))


# --- building ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rendered:
    turns: tuple[Turn, ...]  # repaired
    prefix: str
    tools: _Tools
    repairs: tuple[str, ...]
    payload: dict[str, Any]


def _too_long(size: int, budget: int, window: int, reason: str) -> ContextTooLong:
    """The byte budget stands for the model's window: ``size`` bytes count as that share of it, so the
    token figures say how far over it is (``tokens`` > ``maximum``), as clients that compact expect."""
    return ContextTooLong(
        f"The conversation is too large for Kiro: {size:,} bytes of JSON, over the {budget:,}-byte limit, "
        f"{reason}. Shorten the conversation (or compact it), the system prompt or the tool list.",
        tokens=max(window + 1, -(-window * size // budget)),
        maximum=window,
    )


def _trim(
    full: _Rendered, render: Callable[[tuple[Turn, ...]], _Rendered], budget: int, window: int
) -> _Rendered:
    """2.11: drop the oldest (user, assistant) history pairs until the body fits ``budget``.

    Pairs keep history user-first; re-rendering re-runs the repairs, so a tool result whose call was
    dropped becomes text rather than an orphan. Raises ``ContextTooLong`` when even the current message
    alone does not fit."""
    history = full.payload["conversationState"].get("history", [])
    freed = [0]
    for entry in history:
        freed.append(freed[-1] + payload_size(entry) + 2)
    total = payload_size(full.payload)
    prefix_size = payload_size(full.prefix)
    drop = 0
    while True:
        drop += 2
        while drop < len(history) and total - freed[drop] + prefix_size > budget:
            drop += 2
        drop = min(drop, len(history))
        trimmed = render(full.turns[drop:])
        size = payload_size(trimmed.payload)
        if size <= budget:
            logger.debug(
                "history trimmed: dropped %d of %d turns to fit %d bytes", drop, len(history), budget
            )
            return trimmed
        if drop >= len(history):
            raise _too_long(size, budget, window, "even after dropping every earlier turn")


def build_kiro_request(conversation: Conversation, options: ConvertOptions = ConvertOptions()) -> KiroRequest:
    """Repair, render and size-check a conversation."""
    resolved = resolve_model(conversation.model)
    thinking = effective_thinking(conversation, resolved.thinking)
    conversation_id = conversation.conversation_id or str(uuid.uuid4())

    def render(turns: tuple[Turn, ...]) -> _Rendered:
        repaired = repair_history(turns, conversation.tools)
        tools = _prepare_tools(repaired.tools)
        prefix = _system_prefix(conversation, thinking, tools)
        payload = _render(repaired.turns, prefix, tools, resolved.kiro_model_id, conversation_id)
        return _Rendered(repaired.turns, prefix, tools, repaired.applied, payload)

    rendered = render(conversation.turns)
    repairs = list(rendered.repairs)
    budget = options.payload_budget_bytes
    size = payload_size(rendered.payload)
    window = context_window(conversation.model)
    if size > budget:
        trim = options.trim_history if conversation.trim_history is None else conversation.trim_history
        if not trim:
            raise _too_long(size, budget, window, "and history trimming is off")
        rendered = _trim(rendered, render, budget, window)
        repairs.extend(r for r in (*rendered.repairs, HISTORY_TRIMMED) if r not in repairs)
    inverse = {alias: name for name, alias in rendered.tools.upstream_names.items() if alias != name}
    return KiroRequest(
        payload=rendered.payload,
        model=conversation.model,
        kiro_model_id=resolved.kiro_model_id,
        tool_names=inverse,
        repairs=tuple(repairs),
        dropped_tools=conversation.dropped_tools,
        input_tokens=estimate_conversation_tokens(conversation),
        thinking=not isinstance(thinking, ThinkingOff),
        stop_sequences=conversation.stop_sequences,
        max_tokens=conversation.max_tokens,
        context_window=window,
        stream=conversation.stream,
        include_usage=conversation.include_usage,
    )
