"""Responses API bodies -> Kiro requests (golden fixtures from what Codex 0.171 sent), and the pure pieces
of the Responses stream builder: the incremental custom-tool input decoder and the schema check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_tray.gateway.dialects import RESPONSES
from kiro_tray.protocol.conversation import ThinkingEnabled, ThinkingPart, ToolChoiceTool, ToolUsePart
from kiro_tray.protocol.errors import InvalidRequest
from kiro_tray.protocol.responses_request import encrypt_reasoning, parse_responses_request
from kiro_tray.protocol.responses_stream import _custom_input, _InputDecoder
from kiro_tray.protocol.schema_check import schema_problem

from ..kiro_payloads import current, history
from .kiro_rules import assert_fake_kiro_accepts, assert_kiro_valid

FIXTURES = Path(__file__).parent.parent / "fixtures" / "clients"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def tool_names(payload: dict[str, Any]) -> list[str]:
    return [t["toolSpecification"]["name"] for t in current(payload)["userInputMessageContext"]["tools"]]


# --- golden: what Codex sent ---------------------------------------------------------------------------


def test_codex_first_turn() -> None:
    body = fixture("codex")
    assert "instructions" not in body and body["store"] is False and body["include"]
    request = RESPONSES.to_kiro(body)
    payload = request.payload
    assert_kiro_valid(payload)
    assert_fake_kiro_accepts(payload)
    state = payload["conversationState"]
    assert state["conversationId"] == body["prompt_cache_key"]  # one Codex session, one Kiro conversation
    assert current(payload)["modelId"] == "claude-sonnet-4.5"
    text = current(payload)["content"]
    assert text.index("You are a coding agent") < text.index("<skills_instructions>")  # developer -> system
    assert "<environment_context>" in text and text.rstrip().endswith("Run the marker command")
    names = tool_names(payload)
    assert names[:4] == ["exec_command", "write_stdin", "request_user_input", "view_image"]
    assert "multi_agent_v1__spawn_agent" in names and "multi_agent_v1" not in names
    assert request.dropped_tools == ("web_search",)
    assert not request.thinking  # reasoning.summary without an effort


def test_codex_tool_result_turn() -> None:
    body = fixture("codex_tool_result")
    conversation = parse_responses_request(body).to_conversation()
    _, assistant, _ = conversation.turns
    assert [p.kind for p in assistant.parts] == ["thinking", "tool_use"]
    thinking, call = assistant.parts
    assert isinstance(thinking, ThinkingPart) and thinking.text == "thinking hard"
    assert (
        isinstance(call, ToolUsePart)
        and call.id == "call_abc"
        and call.input == {"cmd": "echo captured-marker"}
    )
    payload = RESPONSES.to_kiro(body).payload
    assert_kiro_valid(payload)
    assert_fake_kiro_accepts(payload)
    uses = history(payload)[-1]["assistantResponseMessage"]["toolUses"]
    assert uses == [
        {"toolUseId": "call_abc", "name": "exec_command", "input": {"cmd": "echo captured-marker"}}
    ]
    result = current(payload)["userInputMessageContext"]["toolResults"][0]
    assert result["toolUseId"] == "call_abc" and "captured-marker" in json.dumps(result)


def test_codex_with_apply_patch_and_effort() -> None:
    """Codex declares ``apply_patch`` as a freeform custom tool for models it knows."""
    body = fixture("codex_tool_result")
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}
    body["tools"].append(
        {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": grammar}
    )
    body["reasoning"] = {"effort": "medium", "summary": "auto"}
    body["instructions"] = "Extra instructions."
    body["input"].append(
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"}
    )
    body["input"].append({"type": "custom_tool_call_output", "call_id": "c2", "output": "Done"})
    conversation = parse_responses_request(body).to_conversation()
    assert conversation.thinking == ThinkingEnabled(10_000)
    assert conversation.system.startswith("Extra instructions.")
    spec = next(t for t in conversation.tools if t.name == "apply_patch")
    assert "start: begin_patch" in spec.description and spec.schema["required"] == ["input"]
    payload = RESPONSES.to_kiro(body).payload
    assert_kiro_valid(payload)
    uses = history(payload)[-1]["assistantResponseMessage"]["toolUses"]
    assert {"toolUseId": "c2", "name": "apply_patch", "input": {"input": "*** Begin"}} in uses


# --- conversion rules ----------------------------------------------------------------------------------


def test_our_encrypted_reasoning_comes_back_as_thinking_and_foreign_is_ignored() -> None:
    ours = {"type": "reasoning", "summary": [], "encrypted_content": encrypt_reasoning("deep thought", "sig")}
    foreign = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-opaque"}
    body = {"model": "m", "input": ["x", ours, foreign, "y"]}
    body["input"] = [{"role": "user", "content": "x"}, ours, foreign, {"role": "user", "content": "y"}]
    turns = parse_responses_request(body).to_conversation().turns
    assert turns[1].parts == (ThinkingPart("deep thought"),)


def test_json_schema_format_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {
        "model": "m",
        "input": "x",
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema}},
    }
    conversation = parse_responses_request(body).to_conversation()
    assert [t.name for t in conversation.tools] == ["out"] and conversation.tool_choice == ToolChoiceTool(
        "out"
    )
    assert parse_responses_request(body).shape().format_tool == "out"


def test_developer_message_with_an_image_is_a_400_naming_the_part() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    body = {"model": "m", "input": [{"role": "developer", "content": [image]}]}
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(body).to_conversation()
    assert caught.value.param == "input.0.content.0"


# --- the builder's pure pieces -------------------------------------------------------------------------

RAW = 'line "one"\n\ttab \\ back é ✓ 😀 \u2028 end'


@given(st.lists(st.integers(min_value=1, max_value=len(json.dumps({"input": RAW}))), max_size=12))
def test_input_decoder_matches_json_at_any_split(cuts: list[int]) -> None:
    text = json.dumps({"input": RAW})
    points = sorted(set(cuts))
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    decoder = _InputDecoder()
    assert "".join(decoder.feed(piece) for piece in pieces) == RAW


def test_custom_input_fallbacks() -> None:
    assert _custom_input('{"input": "x"}') == "x"
    assert _custom_input('{"patch": "y"}') == "y"
    assert _custom_input('{"a": 1, "b": 2}') == '{"a": 1, "b": 2}'


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"name": "a", "tags": ["x"]}, None),
        ({"tags": []}, "missing required property 'name'"),
        ({"name": 3}, "$.name: expected string"),
        ({"name": "a", "extra": 1}, "unexpected property 'extra'"),
        ({"name": "a", "tags": [1]}, "$.tags[0]: expected string"),
        ({"name": "a", "kind": "z"}, "$.kind: not one of the allowed values"),
        ({"name": "a", "size": {"n": -1}}, "$.size.n: violates minimum 0"),
    ],
)
def test_schema_check(value: Any, problem: str | None) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"enum": ["a", "b"]},
            "size": {"$ref": "#/$defs/size"},
        },
        "required": ["name"],
        "additionalProperties": False,
        "$defs": {"size": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}},
    }
    found = schema_problem(value, schema)
    assert (found is None) if problem is None else (found is not None and problem in found)
