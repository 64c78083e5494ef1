"""The fake Kiro's request validation: every documented way to earn a 400 (kiro-protocol.md 2.3, 2.6-2.11).

:func:`validate` runs the rules in :data:`RULES` in order and returns the first violation, answered with
Kiro's real error body. Each rule is a small function of the parsed body and a :class:`Context`.

Decisions where the protocol doc is unsure (stricter is safer: a gateway passing the fake passes Kiro):

- ``chatTriggerType`` must be ``MANUAL``: ``AUTO`` is not in the official enum and kiro.rs dropped it
  "to avoid possible 400"; ``DIAGNOSTIC``/``INLINE_CHAT`` are not chat triggers.
- Tool uses in history must be answered in the very next user turn (gateways remove orphans).
- Every ``content`` must be a non-empty string, also on user turns that only carry toolResults
  (a placeholder is the universally accepted choice).
- ``chatTriggerType`` and every turn's ``content`` are required; a missing ``modelId`` is allowed.
- ``toolResults[].content`` items are ``{"text": str}`` or ``{"json": ...}``; ``status`` if present is
  ``success`` or ``error``.
- A tool entry carries only ``toolSpecification`` (a stray ``cachePoint`` is rejected, issue #109);
  its description must be non-empty.
- Context length: the characters the model reads (turn text, tool results, tool inputs, tool specs),
  divided by 4, must not exceed the model's ``tokenLimits.maxInputTokens`` (editable in the model list).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALLOWED_TOP_LEVEL = frozenset({"conversationState", "profileArn", "additionalModelRequestFields"})
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
TOOL_NAME_LIMIT = 64
DEFAULT_MAX_PAYLOAD_BYTES = 615_000
DEFAULT_CONTEXT_TOKENS = 200_000
CHARS_PER_TOKEN = 4

IMPROPER = "Improperly formed request."
TOOL_CONFIG_MESSAGE = "The toolConfig field must be defined when using toolUse and toolResult content blocks."
INVALID_MODEL = "Invalid model ID or insufficient subscription level to use it"
TOO_LONG = "Input is too long."
NOT_AUTHORIZED = "User is not authorized to make this call"


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """The answer Kiro gives to a request breaking ``rule``."""

    rule: str
    status: int
    body: dict[str, Any]
    detail: str = ""  # for test failure messages only; Kiro itself says nothing more


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules need besides the body."""

    raw_size: int
    models: Sequence[Mapping[str, Any]]
    internal_model_ids: frozenset[str] = frozenset()
    #: The social account's ARN: a ``profileArn`` in the body must equal it. None: not checked.
    expected_arn: str | None = None
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS


def improper(rule: str, detail: str = "", reason: str | None = None) -> RuleViolation:
    return RuleViolation(rule, 400, {"message": IMPROPER, "reason": reason}, detail)


# ---- walking the body -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of history or the current message, with its place in the conversation."""

    role: str  # "user" | "assistant" | "?" (neither member present)
    message: Mapping[str, Any]
    where: str


def _state(body: Mapping[str, Any]) -> Mapping[str, Any]:
    state: Mapping[str, Any] = body["conversationState"]
    return state


def _current(body: Mapping[str, Any]) -> Mapping[str, Any]:
    message: Mapping[str, Any] = _state(body)["currentMessage"]["userInputMessage"]
    return message


def _context(message: Mapping[str, Any]) -> Mapping[str, Any]:
    context = message.get("userInputMessageContext")
    return context if isinstance(context, Mapping) else {}


def turns(body: Mapping[str, Any]) -> list[Turn]:
    """History then the current message (valid only after :func:`structure` passed)."""
    found: list[Turn] = []
    for index, entry in enumerate(_state(body).get("history") or []):
        where = f"history[{index}]"
        if "userInputMessage" in entry:
            found.append(Turn("user", entry["userInputMessage"], where))
        elif "assistantResponseMessage" in entry:
            found.append(Turn("assistant", entry["assistantResponseMessage"], where))
    found.append(Turn("user", _current(body), "currentMessage"))
    return found


def _tool_uses(turn: Turn) -> list[Any]:
    uses = turn.message.get("toolUses") if turn.role == "assistant" else None
    return uses if isinstance(uses, list) else []


def _tool_results(turn: Turn) -> list[Any]:
    results = _context(turn.message).get("toolResults") if turn.role == "user" else None
    return results if isinstance(results, list) else []


def _declared_tools(body: Mapping[str, Any]) -> list[Any]:
    tools = _context(_current(body)).get("tools")
    return tools if isinstance(tools, list) else []


def _has_empty_key(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(key == "" or _has_empty_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_empty_key(item) for item in value)
    return False


def _null_schema_members(schema: Any) -> Iterator[str]:
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in ("properties", "required") and value is None:
                yield key
            yield from _null_schema_members(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _null_schema_members(item)


# ---- the rules --------------------------------------------------------------------------------------

Rule = Callable[[Mapping[str, Any], Context], RuleViolation | None]


def top_level_fields(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Invented top-level members (``systemPrompt``, ...) -> REQUEST_BODY_INVALID."""
    extra = sorted(set(body) - ALLOWED_TOP_LEVEL)
    if extra:
        return improper("top_level_fields", f"unknown members {extra}", "REQUEST_BODY_INVALID")
    return None


def profile_arn(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """A social account's ``profileArn``, when sent, must be its own (absent is accepted)."""
    arn = body.get("profileArn")
    if ctx.expected_arn is not None and arn is not None and arn != ctx.expected_arn:
        return RuleViolation("profile_arn", 403, {"message": NOT_AUTHORIZED, "reason": None})
    return None


def payload_size(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Above ~615 KB of JSON Kiro answers the misleading "Improperly formed request" (2.11)."""
    if ctx.raw_size > ctx.max_payload_bytes:
        return improper("payload_size", f"{ctx.raw_size} bytes > {ctx.max_payload_bytes}")
    return None


def structure(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """``conversationState.currentMessage.userInputMessage`` exists; history is a list of turns."""
    state = body.get("conversationState")
    if not isinstance(state, Mapping):
        return improper("structure", "conversationState is missing")
    current = state.get("currentMessage")
    if not isinstance(current, Mapping):
        return improper("structure", "currentMessage is missing")
    if "assistantResponseMessage" in current:
        return improper("current_is_user", "the current message is an assistant turn")
    if not isinstance(current.get("userInputMessage"), Mapping):
        return improper("structure", "currentMessage.userInputMessage is missing")
    history = state.get("history", [])
    if not isinstance(history, list):
        return improper("structure", "history is not a list")
    for index, entry in enumerate(history):
        roles = (
            [k for k in ("userInputMessage", "assistantResponseMessage") if k in entry]
            if isinstance(entry, Mapping)
            else []
        )
        if len(roles) != 1 or len(entry) != 1 or not isinstance(entry[roles[0]], Mapping):
            return improper("structure", f"history[{index}] is not exactly one user or assistant turn")
    for turn in turns(body):
        context = turn.message.get("userInputMessageContext", {})
        if turn.role == "user" and not isinstance(context, Mapping):
            return improper("structure", f"{turn.where}.userInputMessageContext is not an object")
    return None


def chat_trigger_type(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    trigger = _state(body).get("chatTriggerType")
    if trigger != "MANUAL":
        return improper("chat_trigger_type", f"chatTriggerType {trigger!r}")
    return None


def history_starts_with_user(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    all_turns = turns(body)
    if len(all_turns) > 1 and all_turns[0].role != "user":
        return improper("history_starts_with_user", "history starts with an assistant turn")
    return None


def roles_alternate(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """No two same-role turns in a row, counting the current (user) message."""
    all_turns = turns(body)
    for before, after in itertools.pairwise(all_turns):
        if before.role == after.role:
            return improper("roles_alternate", f"{before.where} and {after.where} are both {after.role}")
    return None


def content_non_empty(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Every turn has a non-empty string ``content`` (placeholders, never ``""``)."""
    for turn in turns(body):
        content = turn.message.get("content")
        if not isinstance(content, str) or content == "":
            return improper("content_non_empty", f"{turn.where}.content is {content!r}")
    return None


def tool_uses_shape(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """``toolUses`` is a non-empty list of ``{toolUseId, name, input: object}``; no empty input keys."""
    for turn in turns(body):
        if turn.role != "assistant" or "toolUses" not in turn.message:
            continue
        uses = turn.message["toolUses"]
        if not isinstance(uses, list) or not uses:
            return improper("empty_tool_uses", f"{turn.where}.toolUses is {uses!r}")
        for use in uses:
            if not (
                isinstance(use, Mapping)
                and isinstance(use.get("toolUseId"), str)
                and use["toolUseId"]
                and isinstance(use.get("name"), str)
                and use["name"]
                and isinstance(use.get("input"), Mapping)
            ):
                return improper("tool_uses_shape", f"{turn.where} has a malformed toolUse")
            if _has_empty_key(use["input"]):
                return improper("tool_input_empty_keys", f"{turn.where} tool input has an empty key")
    return None


def tools_only_on_current(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    for turn in turns(body)[:-1]:
        if turn.role == "user" and "tools" in _context(turn.message):
            return improper("tools_only_on_current", f"{turn.where} declares tools")
    return None


def tool_specs(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Each tool is ``{"toolSpecification": {name <= 64, description, inputSchema: {json}}}``."""
    tools = _context(_current(body)).get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return improper("tool_specs", "tools is not a list")
    for index, tool in enumerate(tools):
        spec = tool.get("toolSpecification") if isinstance(tool, Mapping) else None
        if not isinstance(spec, Mapping) or len(tool) != 1:
            return improper("tool_specs", f"tools[{index}] is not just a toolSpecification")
        name, description = spec.get("name"), spec.get("description")
        schema = spec.get("inputSchema")
        if not isinstance(name, str) or not name:
            return improper("tool_specs", f"tools[{index}] has no name")
        if len(name) > TOOL_NAME_LIMIT:
            return improper("tool_name_length", f"tool name {len(name)} chars long")
        if not isinstance(description, str) or not description:
            return improper("tool_specs", f"tool {name} has no description")
        if not isinstance(schema, Mapping) or not isinstance(schema.get("json"), Mapping):
            return improper("tool_specs", f"tool {name} has no inputSchema.json")
        nulls = list(_null_schema_members(schema["json"]))
        if nulls:
            return improper("tool_schema_nulls", f"tool {name} schema has null {nulls[0]}")
    return None


def _image_ok(image: Any) -> bool:
    if not isinstance(image, Mapping) or set(image) != {"format", "source"}:
        return False
    source, image_format = image["source"], image["format"]
    if not isinstance(image_format, str) or image_format not in IMAGE_FORMATS:
        return False
    if not isinstance(source, Mapping) or set(source) != {"bytes"}:
        return False
    data = source["bytes"]
    if not isinstance(data, str) or not data:
        return False
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def images(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """``images`` sit on the user message, shaped ``{format, source: {bytes: base64}}`` (2.9)."""
    for turn in turns(body):
        if turn.role != "user":
            continue
        if "images" in _context(turn.message):
            return improper("images", f"{turn.where} has images inside userInputMessageContext")
        found = turn.message.get("images")
        if found is None:
            continue
        if not isinstance(found, list) or not all(_image_ok(image) for image in found):
            return improper("images", f"{turn.where} has a malformed image")
    return None


def tool_config_present(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Tool uses or results anywhere need tools declared on the current message (2.6 rule 6)."""
    if _declared_tools(body):
        return None
    if any(_tool_uses(turn) or _tool_results(turn) for turn in turns(body)):
        return RuleViolation(
            "tool_config_missing", 400, {"message": TOOL_CONFIG_MESSAGE, "reason": "TOOL_CONFIG_MISSING"}
        )
    return None


def _result_ok(result: Any) -> bool:
    if not isinstance(result, Mapping) or not isinstance(result.get("toolUseId"), str):
        return False
    if result.get("status", "success") not in ("success", "error"):
        return False
    content = result.get("content")
    return isinstance(content, list) and all(
        isinstance(item, Mapping) and (isinstance(item.get("text"), str) or "json" in item)
        for item in content
    )


def tool_pairing(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Each toolResult answers a toolUse of the turn just before; each toolUse is answered just after."""
    all_turns = turns(body)
    for index, turn in enumerate(all_turns):
        if turn.role != "user":
            continue
        previous = all_turns[index - 1] if index else None
        offered = {u["toolUseId"] for u in _tool_uses(previous)} if previous else set()
        results = _tool_results(turn)
        if "toolResults" in _context(turn.message) and not results:
            return improper("tool_results_shape", f"{turn.where}.toolResults is empty or not a list")
        answered = set()
        for result in results:
            if not _result_ok(result):
                return improper("tool_results_shape", f"{turn.where} has a malformed toolResult")
            if result["toolUseId"] not in offered:
                return improper("orphan_tool_result", f"{turn.where} answers {result['toolUseId']}")
            answered.add(result["toolUseId"])
        if offered - answered:
            return improper("unanswered_tool_use", f"{sorted(offered - answered)} unanswered")
    return None


def model_id(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    model = _current(body).get("modelId")
    if model is None:
        return None
    known = {m.get("modelId") for m in ctx.models} | ctx.internal_model_ids
    if not isinstance(model, str) or model not in known:
        return RuleViolation("model_id", 400, {"message": INVALID_MODEL, "reason": None}, f"{model!r}")
    return None


def _model_chars(body: Mapping[str, Any]) -> int:
    total = 0
    for turn in turns(body):
        total += len(turn.message.get("content") or "")
        for use in _tool_uses(turn):
            total += len(use["name"]) + len(json.dumps(use["input"], ensure_ascii=False))
        for result in _tool_results(turn):
            for item in result["content"]:
                text = item.get("text")
                total += len(text) if isinstance(text, str) else len(json.dumps(item.get("json")))
    total += sum(len(json.dumps(tool, ensure_ascii=False)) for tool in _declared_tools(body))
    return total


def context_length(body: Mapping[str, Any], ctx: Context) -> RuleViolation | None:
    """Text beyond the model's window -> ``Input is too long.`` (2.11)."""
    model = _current(body).get("modelId")
    limit = ctx.default_context_tokens
    for entry in ctx.models:
        if entry.get("modelId") == model:
            limit = int(entry.get("tokenLimits", {}).get("maxInputTokens", limit))
    tokens = _model_chars(body) // CHARS_PER_TOKEN
    if tokens > limit:
        body_ = {"message": TOO_LONG, "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}
        return RuleViolation("context_length", 400, body_, f"~{tokens} tokens > {limit}")
    return None


#: In the order they are checked; the first violation is the answer.
RULES: tuple[Rule, ...] = (
    top_level_fields,
    profile_arn,
    payload_size,
    structure,
    chat_trigger_type,
    history_starts_with_user,
    roles_alternate,
    content_non_empty,
    tool_uses_shape,
    tools_only_on_current,
    tool_specs,
    images,
    tool_config_present,
    tool_pairing,
    model_id,
    context_length,
)


def parse(raw: bytes) -> dict[str, Any] | RuleViolation:
    """The JSON object in ``raw``, or Kiro's answer to a body that is not one."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return improper("not_json", "the body is not JSON")
    if not isinstance(body, dict):
        return improper("not_json", "the body is not a JSON object")
    return body


def validate(
    body: bytes | Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    *,
    internal_model_ids: frozenset[str] = frozenset(),
    expected_arn: str | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    raw_size: int | None = None,
) -> RuleViolation | None:
    """The first rule ``body`` (raw bytes or parsed JSON) breaks, or None when Kiro would accept it.

    ``models`` is the ListAvailableModels list (ids and context windows); ``raw_size`` is the size of
    the body as sent (computed from the parsed body when not given).
    """
    if isinstance(body, bytes):
        parsed = parse(body)
        if isinstance(parsed, RuleViolation):
            return parsed
        raw_size = len(body)
        body = parsed
    if raw_size is None:
        raw_size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    ctx = Context(raw_size, models, internal_model_ids, expected_arn, max_payload_bytes)
    for rule in RULES:
        violation = rule(body, ctx)
        if violation is not None:
            return violation
    return None
