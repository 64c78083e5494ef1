"""Neutral conversation -> Kiro body: shape, tools, thinking, size budget, and the every-rule property."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.conversation import (
    Conversation,
    ImagePart,
    Part,
    TextPart,
    ThinkingAdaptive,
    ThinkingEnabled,
    ThinkingOff,
    ThinkingPart,
    Tool,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultPart,
    ToolUsePart,
    Turn,
)
from kiro_tray.protocol.errors import ContextTooLong, InvalidRequest
from kiro_tray.protocol.kiro_payload import (
    HISTORY_TRIMMED,
    ConvertOptions,
    build_kiro_request,
    payload_size,
    sanitize_schema,
    thinking_tags,
    tool_alias,
)
from kiro_tray.protocol.tokens import estimate_text_tokens

from .kiro_rules import assert_kiro_valid

PNG = "iVBORw0KGgo="
CONVERSATION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def user(*parts: Part | str) -> Turn:
    return Turn("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def assistant(*parts: Part | str) -> Turn:
    return Turn("assistant", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def conversation(*turns: Turn, **extra: Any) -> Conversation:
    fields: dict[str, Any] = {"model": "claude-sonnet-4-5", "system": "", "conversation_id": CONVERSATION_ID}
    fields.update(extra)
    return Conversation(turns=turns, **fields)


def state(convo: Conversation) -> dict[str, Any]:
    return build_kiro_request(convo).payload["conversationState"]


# --- shape -------------------------------------------------------------------------------------------


def test_the_body_has_exactly_the_documented_shape() -> None:
    convo = conversation(
        user("hi", ImagePart("image/webp", PNG)),
        assistant("calling", ToolUsePart("t1", "Read", {"path": "a"})),
        user(ToolResultPart("t1", "contents", (ImagePart("image/gif", PNG),), is_error=True)),
        system="SYS",
        tools=(Tool("Read", "Reads a file", {"type": "object", "properties": {"path": {"type": "string"}}}),),
    )
    assert build_kiro_request(convo).payload == {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": CONVERSATION_ID,
            "currentMessage": {
                "userInputMessage": {
                    "content": "Tool results provided.",
                    "modelId": "claude-sonnet-4.5",
                    "origin": "AI_EDITOR",
                    "images": [{"format": "gif", "source": {"bytes": PNG}}],
                    "userInputMessageContext": {
                        "tools": [
                            {
                                "toolSpecification": {
                                    "name": "Read",
                                    "description": "Reads a file",
                                    "inputSchema": {
                                        "json": {"type": "object", "properties": {"path": {"type": "string"}}}
                                    },
                                }
                            }
                        ],
                        "toolResults": [
                            {"toolUseId": "t1", "content": [{"text": "contents"}], "status": "error"}
                        ],
                    },
                }
            },
            "history": [
                {
                    "userInputMessage": {
                        "content": "SYS\n\nhi",
                        "modelId": "claude-sonnet-4.5",
                        "origin": "AI_EDITOR",
                        "images": [{"format": "webp", "source": {"bytes": PNG}}],
                    }
                },
                {
                    "assistantResponseMessage": {
                        "content": "calling",
                        "toolUses": [{"toolUseId": "t1", "name": "Read", "input": {"path": "a"}}],
                    }
                },
            ],
        }
    }


def test_request_metadata() -> None:
    request = build_kiro_request(
        conversation(
            user("x"),
            model="claude-opus-4-6",
            stop_sequences=("STOP",),
            max_tokens=77,
            stream=True,
            include_usage=True,
            dropped_tools=("web_search",),
        )
    )
    assert request.model == "claude-opus-4-6"
    assert request.kiro_model_id == "claude-opus-4.6"
    assert request.context_window == 1_000_000
    assert (request.stop_sequences, request.max_tokens, request.stream, request.include_usage) == (
        ("STOP",),
        77,
        True,
        True,
    )
    assert request.dropped_tools == ("web_search",)
    assert request.tool_names == {}


def test_the_37_sonnet_uses_its_internal_id_everywhere() -> None:
    s = state(conversation(user("a"), assistant("b"), user("c"), model="claude-3-7-sonnet-20250219"))
    assert s["currentMessage"]["userInputMessage"]["modelId"] == "CLAUDE_3_7_SONNET_20250219_V1_0"
    assert s["history"][0]["userInputMessage"]["modelId"] == "CLAUDE_3_7_SONNET_20250219_V1_0"


def test_no_empty_tool_uses_array_when_all_calls_were_unanswered() -> None:
    s = state(conversation(user("a"), assistant("b", ToolUsePart("t1", "f", {})), user("c")))
    assert s["history"][1] == {"assistantResponseMessage": {"content": "b"}}


# --- tools -------------------------------------------------------------------------------------------


def test_tool_alias_keeps_short_names_and_hashes_long_ones() -> None:
    assert tool_alias("Read") == "Read"
    assert tool_alias("x" * 64) == "x" * 64
    long_a, long_b = "mcp__" + "a" * 70, "mcp__" + "a" * 69 + "b"
    alias_a, alias_b = tool_alias(long_a), tool_alias(long_b)
    assert len(alias_a) == len(alias_b) == 64
    assert alias_a != alias_b and alias_a.startswith("mcp__aaa") and alias_a[-9] == "_"
    assert tool_alias(long_a) == alias_a, "stable across requests"


def test_long_tool_names_are_aliased_in_specs_and_history() -> None:
    name = "mcp__server_with_a_really_long_name__tool_with_an_even_longer_descriptive_name"
    request = build_kiro_request(
        conversation(
            user("a"),
            assistant(ToolUsePart("t1", name, {})),
            user(ToolResultPart("t1", "r")),
            tools=(Tool(name, "d", {}),),
            tool_choice=ToolChoiceTool(name),
        )
    )
    alias = tool_alias(name)
    assert request.tool_names == {alias: name}
    s = request.payload["conversationState"]
    assert s["history"][1]["assistantResponseMessage"]["toolUses"][0]["name"] == alias
    spec = s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"][0]["toolSpecification"]
    assert spec["name"] == alias
    assert f"you must call the tool `{alias}`" in s["history"][0]["userInputMessage"]["content"]


def test_long_descriptions_move_into_the_system_text() -> None:
    long_doc = "Line of documentation. " * 500
    s = state(
        conversation(user("q"), system="SYS", tools=(Tool("Big", long_doc, {}), Tool("Small", "  ", {})))
    )
    message = s["currentMessage"]["userInputMessage"]
    specs = [t["toolSpecification"] for t in message["userInputMessageContext"]["tools"]]
    assert specs[0]["description"] == "[Full documentation in system prompt under '## Tool: Big']"
    assert specs[1]["description"] == "Tool: Small"
    assert message["content"] == f"SYS\n\n## Tool: Big\n{long_doc.strip()}\n\nq"


def test_duplicate_tool_names_are_declared_once() -> None:
    s = state(
        conversation(user("q"), tools=(Tool("Read", "a", {}), Tool("read", "b", {}), Tool("Read", "c", {})))
    )
    tools = s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert [t["toolSpecification"]["description"] for t in tools] == ["a"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, {"type": "object", "properties": {}}),
        ([], {"type": "object", "properties": {}}),
        ({}, {"type": "object", "properties": {}}),
        ({"type": None, "properties": None, "required": None}, {"type": "object", "properties": {}}),
        ({"type": "string"}, {"type": "object", "properties": {}}),
        (
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "additionalProperties": False,
                "required": [],
                "properties": {
                    "a": {"type": "object", "additionalProperties": {"type": "string"}, "required": ["x", 3]},
                    "b": {
                        "type": "array",
                        "items": {"type": "object", "properties": None, "additionalProperties": True},
                    },
                    "c": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": None},
                    "additionalProperties": {"type": "boolean"},
                    "d": {"type": ["number", "null"], "enum": [1, 2]},
                    "e": {"type": 5},
                    "f": None,
                },
                "$defs": {"N": {"type": "object", "additionalProperties": False}},
            },
            {
                "type": "object",
                "properties": {
                    "a": {"type": "object", "required": ["x"]},
                    "b": {"type": "array", "items": {"type": "object"}},
                    "c": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "additionalProperties": {"type": "boolean"},
                    "d": {"type": ["number", "null"], "enum": [1, 2]},
                    "e": {},
                    "f": {},
                },
                "$defs": {"N": {"type": "object"}},
            },
        ),
    ],
)
def test_sanitize_schema(schema: Any, expected: dict[str, Any]) -> None:
    assert sanitize_schema(schema) == expected


def test_tool_choice_notes_need_tools() -> None:
    tools = (Tool("f", "d", {}),)
    for choice, needle in [
        (ToolChoiceNone(), "do not call any tool"),
        (ToolChoiceAny(), "must call at least one"),
        (ToolChoiceTool("f"), "must call the tool `f`"),
    ]:
        content = state(conversation(user("q"), tools=tools, tool_choice=choice))["currentMessage"]
        assert needle in content["userInputMessage"]["content"]
    plain = state(conversation(user("q"), tools=tools, tool_choice=ToolChoiceAuto()))
    assert plain["currentMessage"]["userInputMessage"]["content"] == "q"


# --- thinking ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thinking", "tags"),
    [
        (ThinkingOff(), ""),
        (
            ThinkingEnabled(10),
            "<thinking_mode>enabled</thinking_mode><max_thinking_length>1024</max_thinking_length>",
        ),
        (
            ThinkingEnabled(8000),
            "<thinking_mode>enabled</thinking_mode><max_thinking_length>8000</max_thinking_length>",
        ),
        (
            ThinkingEnabled(99999),
            "<thinking_mode>enabled</thinking_mode><max_thinking_length>24576</max_thinking_length>",
        ),
        (
            ThinkingAdaptive("medium"),
            "<thinking_mode>adaptive</thinking_mode><thinking_effort>medium</thinking_effort>",
        ),
    ],
)
def test_thinking_tags(thinking: Any, tags: str) -> None:
    assert thinking_tags(thinking) == tags


def test_thinking_tags_lead_the_first_user_message_with_a_note() -> None:
    s = state(
        conversation(
            user("one"), assistant("two"), user("three"), system="SYS", thinking=ThinkingEnabled(5000)
        )
    )
    first = s["history"][0]["userInputMessage"]["content"]
    tags, note, rest = first.split("\n", 2)
    assert tags == "<thinking_mode>enabled</thinking_mode><max_thinking_length>5000</max_thinking_length>"
    assert "set by the user's client" in note
    assert rest == "\nSYS\n\none"
    assert s["currentMessage"]["userInputMessage"]["content"] == "three"


def test_thinking_model_suffix_turns_thinking_on() -> None:
    request = build_kiro_request(conversation(user("q"), model="claude-sonnet-4-5-thinking"))
    assert request.thinking
    content = request.payload["conversationState"]["currentMessage"]["userInputMessage"]["content"]
    assert content.startswith("<thinking_mode>enabled</thinking_mode><max_thinking_length>20000<")
    explicit = build_kiro_request(
        conversation(user("q"), model="x-thinking", thinking=ThinkingAdaptive("low"))
    )
    assert "<thinking_effort>low</thinking_effort>" in json.dumps(explicit.payload)


def test_no_thinking_tags_unless_asked() -> None:
    request = build_kiro_request(conversation(user("q"), assistant(ThinkingPart("old"), "a"), user("r")))
    assert not request.thinking
    assert "thinking_mode" not in json.dumps(request.payload)


# --- size budget -------------------------------------------------------------------------------------


def long_agent_session(steps: int, size: int = 2_000) -> Conversation:
    turns: list[Turn] = [user("Start the task")]
    for step in range(steps):
        turns.append(assistant(f"step {step}", ToolUsePart(f"t{step}", "Bash", {"command": f"echo {step}"})))
        turns.append(user(ToolResultPart(f"t{step}", f"output {step} " + "x" * size)))
    return conversation(*turns, system="SYSTEM PROMPT", tools=(Tool("Bash", "Runs commands", {}),))


def test_within_budget_nothing_is_trimmed() -> None:
    request = build_kiro_request(long_agent_session(5))
    assert HISTORY_TRIMMED not in request.repairs
    assert len(request.payload["conversationState"]["history"]) == 10


def test_oldest_pairs_are_dropped_to_fit_the_budget() -> None:
    convo = long_agent_session(40)
    full = build_kiro_request(convo)
    budget = payload_size(full.payload) // 2
    request = build_kiro_request(convo, ConvertOptions(payload_budget_bytes=budget))
    assert HISTORY_TRIMMED in request.repairs
    assert "orphan_results_to_text" in request.repairs
    assert_kiro_valid(request.payload, budget)
    s = request.payload["conversationState"]
    assert 2 <= len(s["history"]) < len(full.payload["conversationState"]["history"])
    first = s["history"][0]["userInputMessage"]
    assert first["content"].startswith("SYSTEM PROMPT\n\n[Tool result (t"), (
        "system text moves to the new first turn"
    )
    assert "toolResults" not in first.get("userInputMessageContext", {})
    last_output = s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    assert last_output["toolUseId"] == "t39"
    assert request.input_tokens == full.input_tokens, "the estimate describes the client's conversation"


def test_trimming_can_drop_every_earlier_turn() -> None:
    convo = long_agent_session(3, size=50_000)
    current_only = 52_000
    request = build_kiro_request(convo, ConvertOptions(payload_budget_bytes=current_only))
    s = request.payload["conversationState"]
    assert "history" not in s
    assert s["currentMessage"]["userInputMessage"]["content"].startswith(
        "SYSTEM PROMPT\n\n[Tool result (t2)]"
    )
    assert_kiro_valid(request.payload, current_only)


def test_too_big_even_alone_raises_context_too_long() -> None:
    with pytest.raises(ContextTooLong) as caught:
        build_kiro_request(long_agent_session(3, size=50_000), ConvertOptions(payload_budget_bytes=10_000))
    assert "even after dropping every earlier turn" in caught.value.message
    assert isinstance(caught.value, InvalidRequest)


def test_trimming_off_raises_context_too_long() -> None:
    convo = long_agent_session(10)
    with pytest.raises(ContextTooLong) as caught:
        build_kiro_request(convo, ConvertOptions(payload_budget_bytes=5_000, trim_history=False))
    assert "history trimming is off" in caught.value.message


# --- the property: every rule holds for any conversation ---------------------------------------------

IDS = st.sampled_from(["t1", "t2", "t3", "t4"])
NAMES = st.sampled_from(["Read", "read", "Bash", "mcp__" + "long_server_name_" * 5])
TEXTS = st.sampled_from(["", " ", "\n", "hello", "{", "<b>x</b>", "ünïcode ✓", "long " * 300])
IMAGES = st.builds(
    ImagePart, st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]), st.just(PNG)
)
INPUTS = st.dictionaries(
    st.sampled_from(["", "a", "b"]), st.one_of(st.integers(), st.just({"": 1}), st.just("")), max_size=3
)
USER_PARTS = st.one_of(
    TEXTS.map(TextPart),
    IMAGES,
    st.builds(ToolResultPart, IDS, TEXTS, st.lists(IMAGES, max_size=2).map(tuple), st.booleans()),
)
ASSISTANT_PARTS = st.one_of(
    TEXTS.map(TextPart), TEXTS.map(ThinkingPart), st.builds(ToolUsePart, IDS, NAMES, INPUTS)
)
ANY_PARTS = st.one_of(USER_PARTS, ASSISTANT_PARTS)
TURNS = st.lists(
    st.one_of(
        st.builds(Turn, st.just("user"), st.lists(USER_PARTS, max_size=4).map(tuple)),
        st.builds(Turn, st.just("assistant"), st.lists(ASSISTANT_PARTS, max_size=4).map(tuple)),
        st.builds(Turn, st.sampled_from(["user", "assistant"]), st.lists(ANY_PARTS, max_size=2).map(tuple)),
    ),
    max_size=10,
)
SCHEMAS = st.sampled_from(
    [
        {},
        {"type": "object", "properties": None, "required": None},
        {"additionalProperties": False, "required": []},
    ]
)
TOOLS = st.lists(
    st.builds(Tool, NAMES, st.sampled_from(["", "does things", "D" * 10_001]), SCHEMAS), max_size=3
)
CHOICES = st.one_of(
    st.just(ToolChoiceAuto()), st.just(ToolChoiceNone()), st.just(ToolChoiceAny()), NAMES.map(ToolChoiceTool)
)
THINKING = st.one_of(
    st.just(ThinkingOff()), st.integers(0, 50_000).map(ThinkingEnabled), st.just(ThinkingAdaptive())
)


@settings(max_examples=300, deadline=None)
@given(
    TURNS,
    TOOLS,
    st.sampled_from(["", "system prompt"]),
    CHOICES,
    THINKING,
    st.sampled_from(["claude-sonnet-4-5", "claude-3-7-sonnet", "auto-kiro"]),
    st.one_of(st.none(), st.integers(2_000, 12_000)),
)
def test_every_payload_obeys_every_kiro_rule(
    turns: list[Turn],
    tools: list[Tool],
    system: str,
    choice: Any,
    thinking: Any,
    model: str,
    budget: int | None,
) -> None:
    convo = Conversation(
        model=model,
        system=system,
        turns=tuple(turns),
        tools=tuple(tools),
        tool_choice=choice,
        thinking=thinking,
    )
    options = ConvertOptions(payload_budget_bytes=budget) if budget else ConvertOptions()
    try:
        request = build_kiro_request(convo, options)
    except ContextTooLong:
        assert budget is not None
        event("context too long")
        return
    event("trimmed" if HISTORY_TRIMMED in request.repairs else "not trimmed")
    assert_kiro_valid(request.payload, options.payload_budget_bytes)
    assert request.thinking == (not isinstance(thinking, ThinkingOff))
    assert ("thinking_mode" in json.dumps(request.payload)) == request.thinking
    for alias, original in request.tool_names.items():
        assert len(alias) <= 64 < len(original)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3_000), min_size=1, max_size=12), st.floats(0.05, 1.0), st.booleans())
def test_trimming_always_fits_the_budget_or_says_why(
    sizes: list[int], fraction: float, orphan_start: bool
) -> None:
    turns: list[Turn] = [user(ToolResultPart("t0", "early result")) if orphan_start else user("go")]
    for step, size in enumerate(sizes, start=1):
        turns.append(assistant("x" * (size % 7), ToolUsePart(f"t{step}", "Bash", {"n": step})))
        turns.append(user(ToolResultPart(f"t{step}", "y" * size), "z" * (size // 3)))
    convo = conversation(*turns, system="SYS", tools=(Tool("Bash", "runs", {}),))
    full = payload_size(build_kiro_request(convo).payload)
    budget = max(500, int(full * fraction))
    try:
        request = build_kiro_request(convo, ConvertOptions(payload_budget_bytes=budget))
    except ContextTooLong:
        event("context too long")
        alone = build_kiro_request(conversation(turns[-1], system="SYS", tools=convo.tools))
        assert payload_size(alone.payload) > budget
        return
    event("trimmed" if HISTORY_TRIMMED in request.repairs else "not trimmed")
    assert_kiro_valid(request.payload, budget)
    results = request.payload["conversationState"]["currentMessage"]["userInputMessage"]
    assert results["content"].endswith("z" * (sizes[-1] // 3)) or sizes[-1] < 3


# --- token estimate ----------------------------------------------------------------------------------


def reference_text_tokens(text: str) -> int:
    """The estimate's definition, character by character."""
    if not text:
        return 0
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return max(1, math.ceil((len(text) - wide) / 4 + wide))


@given(st.text())
def test_fast_token_estimate_matches_its_definition(text: str) -> None:
    assert estimate_text_tokens(text) == reference_text_tokens(text)
