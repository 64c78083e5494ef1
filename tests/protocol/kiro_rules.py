"""A checker for every rule a Kiro request body must obey (kiro-protocol.md 2.3, 2.6 to 2.11).

Shared by the golden tests and the Hypothesis property tests; every body is also run through the fake
Kiro's validator (``tests/fake_kiro/rules.py``). Tool inputs and schemas are client data,
so the "no empty strings / no empty containers" sweep skips their contents (empty keys are still
checked inside tool inputs).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.fake_kiro import rules as fake_kiro_rules

IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
CLIENT_DATA_KEYS = {"input", "inputSchema"}


def empty_values(value: Any, path: str = "$") -> list[str]:
    """Paths of empty strings, lists and objects, outside tool inputs and schemas."""
    found: list[str] = []
    if isinstance(value, str):
        if not value.strip():
            found.append(path)
    elif isinstance(value, list):
        if not value:
            found.append(path)
        for index, item in enumerate(value):
            found.extend(empty_values(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        if not value:
            found.append(path)
        for key, item in value.items():
            if not key:
                found.append(f"{path}.<empty key>")
            if key not in CLIENT_DATA_KEYS:
                found.extend(empty_values(item, f"{path}.{key}"))
    return found


def empty_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "" or empty_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return any(empty_keys(v) for v in value)
    return False


def schema_violations(schema: Any, path: str = "schema") -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("additionalProperties", "$schema"):
                found.append(f"{path}.{key}")
            if value is None:
                found.append(f"{path}.{key} is null")
            if key == "required" and (not isinstance(value, list) or not value):
                found.append(f"{path}.required is empty or not a list")
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    found.extend(schema_violations(sub, f"{path}.properties.{name}"))
            elif key != "properties":
                found.extend(schema_violations(value, f"{path}.{key}"))
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            found.extend(schema_violations(item, f"{path}[{index}]"))
    return found


def _check_user(message: dict[str, Any], *, current: bool) -> list[str]:
    assert set(message) <= {"content", "modelId", "origin", "images", "userInputMessageContext"}, (
        message.keys()
    )
    assert isinstance(message["content"], str) and message["content"].strip()
    assert message["origin"] == "AI_EDITOR"
    assert isinstance(message["modelId"], str) and message["modelId"]
    for image in message.get("images", []):
        assert image["format"] in IMAGE_FORMATS
        assert set(image) == {"format", "source"} and set(image["source"]) == {"bytes"}
    context = message.get("userInputMessageContext", {})
    assert set(context) <= {"tools", "toolResults"}
    if not current:
        assert "tools" not in context, "tools only on the current message"
    for result in context.get("toolResults", []):
        assert set(result) == {"toolUseId", "content", "status"}
        assert result["status"] in ("success", "error")
        assert all(set(c) == {"text"} and c["text"].strip() for c in result["content"])
    return [r["toolUseId"] for r in context.get("toolResults", [])]


def assert_kiro_valid(payload: dict[str, Any], budget: int | None = None) -> None:
    """Fail with a readable message if ``payload`` breaks any known Kiro rule."""
    assert set(payload) == {"conversationState"}, "no invented top-level fields (and no profileArn here)"
    state = payload["conversationState"]
    assert set(state) <= {"chatTriggerType", "conversationId", "currentMessage", "history"}
    assert state["chatTriggerType"] == "MANUAL"
    uuid.UUID(state["conversationId"])
    assert set(state["currentMessage"]) == {"userInputMessage"}
    assert empty_values(payload) == [], empty_values(payload)

    history = state.get("history", [])
    entries = [*history, state["currentMessage"]]
    for index, entry in enumerate(entries):
        expected = "userInputMessage" if index % 2 == 0 else "assistantResponseMessage"
        assert set(entry) == {expected}, f"entry {index} should be {expected}: alternation, user first"

    current = state["currentMessage"]["userInputMessage"]
    tools = current.get("userInputMessageContext", {}).get("tools", [])
    tool_names = [t["toolSpecification"]["name"] for t in tools]
    assert len(set(tool_names)) == len(tool_names), "duplicate tool names"
    for tool in tools:
        spec = tool["toolSpecification"]
        assert set(spec) == {"name", "description", "inputSchema"}
        assert 0 < len(spec["name"]) <= 64
        assert 0 < len(spec["description"]) <= 10_000
        schema = spec["inputSchema"]["json"]
        assert schema["type"] == "object" and isinstance(schema["properties"], dict)
        assert schema_violations(schema) == [], schema_violations(schema)

    seen_ids: set[str] = set()
    previous_calls: list[str] = []
    for index, entry in enumerate(entries):
        if index % 2 == 0:
            results = _check_user(entry["userInputMessage"], current=index == len(entries) - 1)
            assert len(set(results)) == len(results), "duplicate tool results"
            assert sorted(results) == sorted(previous_calls), (
                f"entry {index}: results {results} must answer exactly the calls {previous_calls}"
            )
        else:
            message = entry["assistantResponseMessage"]
            assert set(message) <= {"content", "toolUses"}
            assert message["content"].strip()
            previous_calls = []
            for use in message.get("toolUses", []):
                assert set(use) == {"toolUseId", "name", "input"}
                assert isinstance(use["input"], dict) and not empty_keys(use["input"])
                assert use["name"] in tool_names, f"tool {use['name']} used in history but not declared"
                assert use["toolUseId"] not in seen_ids, "tool use ids are unique"
                seen_ids.add(use["toolUseId"])
                previous_calls.append(use["toolUseId"])
    if budget is not None:
        assert len(json.dumps(payload)) <= budget
    assert_fake_kiro_accepts(payload)


def assert_fake_kiro_accepts(payload: dict[str, Any]) -> None:
    """The fake Kiro's own validator (written independently from the spec) accepts the body too."""
    model = payload["conversationState"]["currentMessage"]["userInputMessage"]["modelId"]
    violation = fake_kiro_rules.validate(payload, [{"modelId": model}], raw_size=len(json.dumps(payload)))
    assert violation is None, f"fake Kiro rejects the body: {violation}"
