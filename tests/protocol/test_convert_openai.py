"""OpenAI chat-completions bodies -> Kiro requests: features, errors, golden client fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_tray.gateway.dialects import CHAT
from kiro_tray.protocol.conversation import (
    ImagePart,
    TextPart,
    ThinkingEnabled,
    ThinkingOff,
    ThinkingPart,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultPart,
    ToolUsePart,
)
from kiro_tray.protocol.errors import ContextTooLong, InvalidRequest
from kiro_tray.protocol.kiro_payload import ConvertOptions
from kiro_tray.protocol.openai_request import openai_conversation, parse_openai_request

from ..kiro_payloads import current, history
from .kiro_rules import assert_kiro_valid

openai_to_kiro = CHAT.to_kiro

FIXTURES = Path(__file__).parent.parent / "fixtures" / "clients"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def invalid(body: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_kiro(body)
    return caught.value


# --- messages ----------------------------------------------------------------------------------------


def test_a_single_user_message_becomes_the_current_message() -> None:
    request = openai_to_kiro(body(user("Hello!")))
    assert current(request.payload) == {
        "content": "Hello!",
        "modelId": "claude-sonnet-4.5",
        "origin": "AI_EDITOR",
    }
    assert "history" not in request.payload["conversationState"]
    assert request.model == "claude-sonnet-4-5"
    assert request.kiro_model_id == "claude-sonnet-4.5"
    assert request.repairs == ()
    assert request.input_tokens > 0
    assert not request.thinking
    assert_kiro_valid(request.payload)


def test_system_and_developer_messages_form_the_system_text() -> None:
    conversation = openai_conversation(
        body(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use British spelling."}]},
            user("hi"),
        )
    )
    assert conversation.system == "Be brief.\n\nUse British spelling."
    request = openai_to_kiro(body({"role": "system", "content": "Be brief."}, user("hi")))
    assert current(request.payload)["content"] == "Be brief.\n\nhi"


def test_system_prompt_goes_to_the_first_history_message() -> None:
    request = openai_to_kiro(
        body(
            {"role": "system", "content": "SYS"},
            user("one"),
            {"role": "assistant", "content": "two"},
            user("three"),
        )
    )
    first = history(request.payload)[0]["userInputMessage"]
    assert first["content"] == "SYS\n\none"
    assert current(request.payload)["content"] == "three"


def test_text_and_data_url_image_parts() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
        {"type": "image_url", "image_url": f"data:image/jpeg;base64,{PNG}"},
    ]
    request = openai_to_kiro(body(user(parts)))
    message = current(request.payload)
    assert message["content"] == "What is this?"
    assert message["images"] == [
        {"format": "png", "source": {"bytes": PNG}},
        {"format": "jpeg", "source": {"bytes": PNG}},
    ]
    assert_kiro_valid(request.payload)


def test_remote_images_are_listed_and_used_once_fetched() -> None:
    url = "https://example.com/cat.png"
    data = body(
        user([{"type": "image_url", "image_url": {"url": url}}, {"type": "image_url", "image_url": url}]),
        {
            "role": "tool",
            "tool_call_id": "x",
            "content": [{"type": "image_url", "image_url": {"url": "http://h/i.gif"}}],
        },
    )
    assert parse_openai_request(data).image_urls() == [url, "http://h/i.gif"]
    error = invalid(body(user([{"type": "image_url", "image_url": {"url": url}}])))
    assert error.param == "messages.0.content.0.image_url.url"
    fetched = ConvertOptions(fetched_images={url: ("image/png", PNG)})
    request = openai_to_kiro(
        body(user([{"type": "text", "text": "see"}, {"type": "image_url", "image_url": url}])), fetched
    )
    assert current(request.payload)["images"] == [{"format": "png", "source": {"bytes": PNG}}]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("data:image/png;base64,!!!not-base64", "not valid base64"),
        ("data:image/png;base64,", "empty"),
        ("data:image/png,rawbytes", "base64 data: URLs"),
        ("data:image/tiff;base64," + PNG, "unsupported image type"),
        ("ftp://example.com/a.png", "data: URLs or http(s)"),
    ],
)
def test_bad_images_name_the_field(url: str, needle: str) -> None:
    error = invalid(
        body(user([{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]))
    )
    assert error.param == "messages.0.content.1.image_url.url"
    assert needle in error.message
    assert error.message.startswith("messages.0.content.1.image_url.url: ")


def test_assistant_tool_calls_and_tool_results() -> None:
    conversation = openai_conversation(
        body(
            user("weather?"),
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "need the tool",
                "tool_calls": [
                    call("c1", "get_weather", '{"city": "Paris"}'),
                    call("c2", "get_time", ""),
                    call("c3", "broken", '{"city": "Par'),
                    call("c4", "listy", "[1, 2]"),
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "noon"}]},
            {
                "role": "tool",
                "tool_call_id": "c3",
                "content": [{"type": "image_url", "image_url": f"data:image/png;base64,{PNG}"}],
            },
            {"role": "tool", "tool_call_id": "c4", "content": ""},
        )
    )
    assistant = conversation.turns[1]
    assert assistant.parts == (
        ThinkingPart("need the tool"),
        ToolUsePart("c1", "get_weather", {"city": "Paris"}),
        ToolUsePart("c2", "get_time", {}),
        ToolUsePart("c3", "broken", {"raw_arguments": '{"city": "Par'}),
        ToolUsePart("c4", "listy", {"raw_arguments": "[1, 2]"}),
    )
    assert len(conversation.turns) == 3, "consecutive tool messages form one user turn"
    assert conversation.turns[2].parts == (
        ToolResultPart("c1", "sunny"),
        ToolResultPart("c2", "noon"),
        ToolResultPart("c3", "", (ImagePart("image/png", PNG),)),
        ToolResultPart("c4", ""),
    )


def test_tool_results_render_with_images_lifted_into_the_message() -> None:
    request = openai_to_kiro(
        body(
            user("shot?"),
            {"role": "assistant", "tool_calls": [call("c1", "screenshot", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "image_url", "image_url": f"data:image/png;base64,{PNG}"}],
            },
        ),
    )
    message = current(request.payload)
    assert message["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert message["userInputMessageContext"]["toolResults"] == [
        {"toolUseId": "c1", "content": [{"text": "(empty result)"}], "status": "success"}
    ]
    assert request.repairs == ("fill_empty_text", "declare_history_tools")
    assert_kiro_valid(request.payload)


def test_non_string_arguments_are_rejected_with_the_path() -> None:
    error = invalid(body(user("x"), {"role": "assistant", "tool_calls": [call("c1", "f", {"a": 1})]}))
    assert error.param == "messages.1.tool_calls.0.function.arguments"


def test_tool_message_without_id_is_rejected() -> None:
    error = invalid(body(user("x"), {"role": "tool", "content": "r"}))
    assert error.param == "messages.1.tool_call_id"


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [user("x")]}, "model"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "messages": [user([{"type": "input_audio"}])]}, "messages.0.content.0"),
        ({"model": "m", "messages": [user([{"type": "text"}])]}, "messages.0.content.0.text"),
        ({"model": "m", "messages": [user(5)]}, "messages.0.content"),
        ({"model": "m", "messages": ["hi"]}, "messages.0"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": "x"}]},
                    user("x"),
                ],
            },
            "messages.0.content.0",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "content": [{"type": "image_url", "image_url": "x"}]}],
            },
            "messages.0.content.0",
        ),
        ({"model": "m", "messages": [user([{"type": "refusal", "refusal": "no"}])]}, "messages.0.content.0"),
        ({"model": "m", "messages": [user("x")], "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": [user("x")], "stop": 5}, "stop"),
        ({"model": "m", "messages": [user("x")], "n": 2}, "n"),
        ({"model": "m", "messages": [user("x")], "tools": [{"type": "function"}]}, "tools.0.function"),
    ],
)
def test_validation_errors_name_the_field(bad: dict[str, Any], param: str) -> None:
    error = invalid(bad)
    assert error.param == param
    assert error.message.startswith(f"{param}: ")


@pytest.mark.parametrize("not_an_object", [None, [], "hello", 3, True])
def test_a_body_that_is_not_an_object_is_rejected(not_an_object: object) -> None:
    assert invalid(not_an_object).message == "the request body must be a JSON object"


def test_unknown_fields_are_ignored() -> None:
    request = openai_to_kiro(
        body(
            user("x"),
            temperature=0.2,
            top_p=1,
            seed=7,
            logit_bias={},
            response_format={"type": "text"},
            foo="bar",
        )
    )
    assert current(request.payload)["content"] == "x"


# --- tools and options -------------------------------------------------------------------------------


def test_standard_and_flat_tools_and_dropped_tool_types() -> None:
    conversation = openai_conversation(
        body(
            user("x"),
            tools=[
                {
                    "type": "function",
                    "function": {"name": "std", "description": "d", "parameters": {"type": "object"}},
                },
                {"type": "function", "name": "flat", "description": "f", "input_schema": {"type": "object"}},
                {"type": "function", "name": "flat2", "parameters": {"type": "object", "properties": {}}},
                {"type": "web_search_preview"},
                {"type": "custom", "name": "grammar_tool"},
            ],
        )
    )
    assert [t.name for t in conversation.tools] == ["std", "flat", "flat2"]
    assert conversation.tools[1].schema == {"type": "object"}
    assert conversation.dropped_tools == ("web_search_preview", "grammar_tool")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, ToolChoiceAuto()),
        ("auto", ToolChoiceAuto()),
        ("none", ToolChoiceNone()),
        ("required", ToolChoiceAny()),
        ({"type": "function", "function": {"name": "f"}}, ToolChoiceTool("f")),
        ({"type": "function", "name": "f"}, ToolChoiceTool("f")),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, ToolChoiceAny()),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}, ToolChoiceAuto()),
    ],
)
def test_tool_choice(choice: Any, expected: object) -> None:
    assert openai_conversation(body(user("x"), tool_choice=choice)).tool_choice == expected


@pytest.mark.parametrize("choice", ["always", {"type": "function"}, {"type": "other"}, 5])
def test_bad_tool_choice_is_rejected(choice: Any) -> None:
    assert invalid(body(user("x"), tool_choice=choice)).param == "tool_choice"


def test_tool_choice_and_parallel_calls_become_instructions() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    required = openai_to_kiro(body(user("x"), tools=tools, tool_choice="required", parallel_tool_calls=False))
    content = current(required.payload)["content"]
    assert "you must call at least one of the available tools" in content
    assert "Call at most one tool per reply." in content
    named = openai_to_kiro(
        body(user("x"), tools=tools, tool_choice={"type": "function", "function": {"name": "f"}})
    )
    assert "you must call the tool `f`" in current(named.payload)["content"]
    none = openai_to_kiro(body(user("x"), tools=tools, tool_choice="none"))
    assert "do not call any tool" in current(none.payload)["content"]
    no_tools = openai_to_kiro(body(user("x"), tool_choice="required"))
    assert current(no_tools.payload)["content"] == "x"


def test_limits_stop_and_streaming_options() -> None:
    request = openai_to_kiro(
        body(
            user("x"),
            max_tokens=100,
            max_completion_tokens=200,
            stop="END",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert (request.max_tokens, request.stop_sequences, request.stream, request.include_usage) == (
        200,
        ("END",),
        True,
        True,
    )
    plain = openai_to_kiro(
        body(user("x"), max_tokens=50, stop=["a", "", "b"], stream_options={"include_usage": True})
    )
    assert (plain.max_tokens, plain.stop_sequences, plain.stream, plain.include_usage) == (
        50,
        ("a", "b"),
        False,
        False,
    )


@pytest.mark.parametrize(
    ("effort", "thinking"),
    [
        (None, ThinkingOff()),
        ("none", ThinkingOff()),
        ("minimal", ThinkingOff()),
        ("low", ThinkingEnabled(4000)),
        ("medium", ThinkingEnabled(10000)),
        ("HIGH", ThinkingEnabled(20000)),
    ],
)
def test_reasoning_effort_maps_to_thinking(effort: str | None, thinking: object) -> None:
    assert openai_conversation(body(user("x"), reasoning_effort=effort)).thinking == thinking


def test_reasoning_effort_injects_thinking_tags() -> None:
    request = openai_to_kiro(body(user("x"), reasoning_effort="medium"))
    assert request.thinking
    assert current(request.payload)["content"].startswith(
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>10000</max_thinking_length>"
    )
    assert invalid(body(user("x"), reasoning_effort="extreme")).param == "reasoning_effort"


def test_trailing_assistant_message_is_a_prefill() -> None:
    request = openai_to_kiro(body(user("x"), {"role": "assistant", "content": "Sure, here"}))
    assert current(request.payload)["content"] == "Continue"
    assert history(request.payload)[-1] == {"assistantResponseMessage": {"content": "Sure, here"}}
    assert "ensure_user_last" in request.repairs


# --- golden client fixtures --------------------------------------------------------------------------


def test_golden_opencode() -> None:
    request = openai_to_kiro(fixture("opencode"))
    assert_kiro_valid(request.payload, 600_000)
    assert request.kiro_model_id == "claude-opus-4.5"
    assert request.thinking and request.stream and request.include_usage
    assert request.max_tokens == 32000
    first = history(request.payload)[0]["userInputMessage"]
    assert first["content"].startswith("<thinking_mode>enabled</thinking_mode><max_thinking_length>20000<")
    assert "You are opencode" in first["content"]
    assert first["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    calls = history(request.payload)[1]["assistantResponseMessage"]
    assert calls["content"].startswith("<thinking>The user wants")
    assert [u["toolUseId"] for u in calls["toolUses"]] == ["call_1", "call_2"]
    truncated = history(request.payload)[3]["assistantResponseMessage"]["toolUses"][0]["input"]
    assert truncated == {"raw_arguments": '{"filePath":"/work/app/main.py","li'}
    assert current(request.payload)["content"].endswith("Summarise main.py in one sentence.")
    specs = current(request.payload)["userInputMessageContext"]["tools"]
    assert [s["toolSpecification"]["name"] for s in specs] == [
        "bash",
        "read",
        "edit",
        "glob",
        "todowrite",
        "invalid",
    ]


def test_golden_opencode_compaction_declares_history_tools() -> None:
    request = openai_to_kiro(fixture("opencode_compaction"))
    assert_kiro_valid(request.payload)
    assert "declare_history_tools" in request.repairs
    names = [
        t["toolSpecification"]["name"] for t in current(request.payload)["userInputMessageContext"]["tools"]
    ]
    assert names == ["read", "edit"]
    assert not request.thinking


def test_golden_cline() -> None:
    request = openai_to_kiro(fixture("cline"))
    assert_kiro_valid(request.payload)
    assert request.kiro_model_id == "claude-sonnet-4"
    first = history(request.payload)[0]["userInputMessage"]
    assert first["images"][0]["format"] == "jpeg"
    assert "<task>" in first["content"] and "<environment_details>" in first["content"]
    merged = history(request.payload)[2]["userInputMessage"]
    assert merged["userInputMessageContext"]["toolResults"][0]["toolUseId"] == "call_r1"
    assert "2025-10-01 10:01" in merged["content"], "the tool result and the next user message are merged"
    assert current(request.payload)["userInputMessageContext"]["toolResults"][0]["toolUseId"] == "call_w1"
    specs = {
        s["toolSpecification"]["name"]: s["toolSpecification"]
        for s in current(request.payload)["userInputMessageContext"]["tools"]
    }
    assert specs["ask_followup_question"]["description"] == "Tool: ask_followup_question"
    assert specs["ask_followup_question"]["inputSchema"]["json"] == {"type": "object", "properties": {}}


def test_golden_cursor_flat_tools() -> None:
    request = openai_to_kiro(fixture("cursor"))
    assert_kiro_valid(request.payload)
    assert request.kiro_model_id == "claude-opus-4.5"
    assert request.model == "claude-4.5-opus-high"
    context = current(request.payload)["userInputMessageContext"]
    assert [t["toolSpecification"]["name"] for t in context["tools"]] == [
        "read_file",
        "codebase_search",
        "run_terminal_cmd",
        "edit_file",
    ]
    assert context["toolResults"][0]["content"][0]["text"].startswith("FAIL src/sum.test.js")
    assert "Call at most one tool per reply." in history(request.payload)[0]["userInputMessage"]["content"]


def test_golden_fixture_too_big_for_a_tiny_budget() -> None:
    with pytest.raises(ContextTooLong):
        openai_to_kiro(fixture("opencode"), ConvertOptions(payload_budget_bytes=2_000))


# --- robustness --------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "tools",
        "parameters",
        "tool_choice",
        "stop",
        "max_tokens",
        "stream",
        "stream_options",
        "include_usage",
        "reasoning_effort",
        "input_schema",
        "n",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from(
        [
            "",
            "user",
            "assistant",
            "tool",
            "system",
            "function",
            "text",
            "image_url",
            "auto",
            "required",
            "{}",
            '{"a"',
            "data:image/png;base64," + PNG,
            "https://x/y.png",
            "high",
            "c1",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)


PART = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "refusal"])},
        optional={"text": JSON, "image_url": JSON},
    ),
)
MESSAGE = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", "system", "developer"])},
        optional={
            "content": st.one_of(SCALARS, st.lists(PART, max_size=3)),
            "tool_calls": JSON,
            "tool_call_id": SCALARS,
        },
    ),
)
BODY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"model": st.just("claude-sonnet-4-5"), "messages": st.lists(MESSAGE, min_size=1, max_size=5)},
        optional={
            k: JSON
            for k in ("tools", "tool_choice", "stop", "max_tokens", "reasoning_effort", "stream_options")
        },
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODY)
def test_any_json_gives_a_valid_payload_or_invalid_request(data: object) -> None:
    try:
        request = openai_to_kiro(data)
    except InvalidRequest as error:
        assert error.message
        return
    assert_kiro_valid(request.payload)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "tool", "system"]),
                "content": st.sampled_from(["", "x", None]),
            },
            optional={
                "tool_call_id": st.sampled_from(["c1", "c2"]),
                "tool_calls": st.lists(
                    st.builds(
                        call,
                        st.sampled_from(["c1", "c2"]),
                        st.sampled_from(["f", "g"]),
                        st.sampled_from(["", "{}", '{"a":']),
                    ),
                    max_size=2,
                ),
            },
        ),
        min_size=1,
        max_size=8,
    )
)
def test_well_shaped_openai_conversations_always_give_valid_payloads(messages: list[dict[str, Any]]) -> None:
    try:
        request = openai_to_kiro(body(*messages))
    except InvalidRequest as error:
        assert error.param is not None and error.param.endswith("tool_call_id")
        return
    assert_kiro_valid(request.payload)


def test_text_parts_keep_their_order() -> None:
    conversation = openai_conversation(
        body(user([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]))
    )
    assert conversation.turns[0].parts == (TextPart("a"), TextPart("b"))
