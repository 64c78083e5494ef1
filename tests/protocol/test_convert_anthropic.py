"""Anthropic messages bodies -> Kiro requests: features, errors, the Claude Code golden fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.gateway.dialects import MESSAGES as MESSAGES_DIALECT
from kiro_tray.protocol.anthropic_request import (
    anthropic_conversation,
    conversation_id_from_user_id,
    parse_anthropic_request,
)
from kiro_tray.protocol.conversation import (
    ImagePart,
    TextPart,
    ThinkingAdaptive,
    ThinkingEnabled,
    ThinkingOff,
    ThinkingPart,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultPart,
    ToolUsePart,
    estimate_request_tokens,
)
from kiro_tray.protocol.errors import InvalidRequest
from kiro_tray.protocol.kiro_payload import ConvertOptions

from ..kiro_payloads import current, history
from .kiro_rules import assert_kiro_valid

anthropic_to_kiro = MESSAGES_DIALECT.to_kiro


def count_anthropic_tokens(body: object) -> int:
    return estimate_request_tokens(MESSAGES_DIALECT.parse(body))

FIXTURES = Path(__file__).parent.parent / "fixtures" / "clients"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
SESSION = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def image(data: str = PNG, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def invalid(data: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        anthropic_to_kiro(data)
    return caught.value


# --- messages and blocks -----------------------------------------------------------------------------


def test_string_content_and_system_blocks() -> None:
    request = anthropic_to_kiro(
        body(
            user("Hello!"),
            system=[
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "B"},
            ],
        )
    )
    assert current(request.payload)["content"] == "A\nB\n\nHello!"
    assert request.max_tokens == 1024
    assert request.repairs == ()
    assert_kiro_valid(request.payload)


def test_blocks_become_parts() -> None:
    conversation = anthropic_conversation(
        body(
            user([{"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}}, image()]),
            assistant(
                [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "shot", "input": {"full": True}},
                ]
            ),
            user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "partial"}, image(media_type="image/jpeg")],
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "doc body"},
                        "title": "Notes",
                    },
                ]
            ),
        )
    )
    assert conversation.turns[0].parts == (TextPart("look"), ImagePart("image/png", PNG))
    assert conversation.turns[1].parts == (
        ThinkingPart("hmm"),
        TextPart("calling"),
        ToolUsePart("t1", "shot", {"full": True}),
    )
    assert conversation.turns[2].parts == (
        ToolResultPart("t1", "partial", (ImagePart("image/jpeg", PNG),), is_error=True),
        TextPart("[Document: Notes]\ndoc body"),
    )


def test_thinking_is_folded_back_as_text_in_history() -> None:
    request = anthropic_to_kiro(
        body(
            user("q"),
            assistant(
                [{"type": "thinking", "thinking": "plan", "signature": "s"}, {"type": "text", "text": "a"}]
            ),
            user("more"),
        )
    )
    assert history(request.payload)[1] == {
        "assistantResponseMessage": {"content": "<thinking>plan</thinking>\n\na"}
    }
    assert "fold_thinking" in request.repairs


def test_tool_result_string_content_and_images_are_lifted() -> None:
    request = anthropic_to_kiro(
        body(
            user("shot"),
            assistant([{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]),
            user(
                [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [image()]},
                    {"type": "text", "text": "and?"},
                ]
            ),
            tools=[{"name": "shot", "description": "Screenshot", "input_schema": {"type": "object"}}],
        )
    )
    message = current(request.payload)
    assert message["content"] == "and?"
    assert message["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert message["userInputMessageContext"]["toolResults"] == [
        {"toolUseId": "t1", "content": [{"text": "(empty result)"}], "status": "success"}
    ]
    assert_kiro_valid(request.payload)


def test_server_tool_blocks_are_replayed_as_text() -> None:
    conversation = anthropic_conversation(
        body(
            user("news?"),
            assistant(
                [
                    {
                        "type": "server_tool_use",
                        "id": "srv1",
                        "name": "web_search",
                        "input": {"query": "kiro"},
                    },
                    {
                        "type": "web_search_tool_result",
                        "tool_use_id": "srv1",
                        "content": [
                            {
                                "type": "web_search_result",
                                "url": "https://kiro.dev",
                                "title": "Kiro",
                                "encrypted_content": "x",
                            }
                        ],
                    },
                    {"type": "text", "text": "Kiro is an IDE."},
                ]
            ),
            user("thanks"),
        )
    )
    texts = [p.text for p in conversation.turns[1].parts if isinstance(p, TextPart)]
    assert texts[0] == '[Server tool web_search (srv1)]\n{"query": "kiro"}'
    assert texts[1] == "[web_search_tool_result (srv1)]\n- Kiro: https://kiro.dev"


def test_url_images_need_the_gateway_to_fetch_them() -> None:
    url = "https://example.com/a.webp"
    block = {"type": "image", "source": {"type": "url", "url": url}}
    data = body(
        user([{"type": "text", "text": "see"}, block]),
        user([{"type": "tool_result", "tool_use_id": "x", "content": [block]}]),
    )
    assert parse_anthropic_request(data).image_urls() == [url]
    assert invalid(data).param == "messages.0.content.1.source.url"
    request = anthropic_to_kiro(data, ConvertOptions(fetched_images={url: ("image/webp", PNG)}))
    assert current(request.payload)["images"][0] == {"format": "webp", "source": {"bytes": PNG}}


def test_data_url_inside_base64_source_is_unwrapped() -> None:
    conversation = anthropic_conversation(body(user([image(f"data:image/gif;base64,{PNG}", "image/png")])))
    assert conversation.turns[0].parts == (ImagePart("image/gif", PNG),)


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        (body(user([{"type": "video"}])), "messages.0.content.0"),
        (body(user([{"type": "text"}])), "messages.0.content.0.text"),
        (body(user([image("***")])), "messages.0.content.0.source"),
        (body(user([image(PNG, "image/bmp")])), "messages.0.content.0.source"),
        (
            body(user([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
            "messages.0.content.0.source",
        ),
        (body(user([{"type": "image", "source": {"type": "weird"}}])), "messages.0.content.0.source"),
        (
            body(
                user(
                    [
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PNG},
                        }
                    ]
                )
            ),
            "messages.0.content.0.source",
        ),
        (
            body(user([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "video"}]}])),
            "messages.0.content.0.content.0",
        ),
        (body(user([{"type": "tool_result"}])), "messages.0.content.0.tool_use_id"),
        (
            body(assistant([{"type": "tool_use", "id": "t", "name": "f", "input": "text"}])),
            "messages.0.content.0.input",
        ),
        (body({"role": "tool", "content": "x"}), "messages.0.role"),
        (body(user("x"), thinking={"type": "sometimes"}), "thinking"),
        (body(user("x"), tool_choice={"type": "tool"}), "tool_choice.name"),
        (body(user("x"), tool_choice={"type": "maybe"}), "tool_choice.type"),
        (body(user("x"), tools=[{"description": "nameless"}]), "tools.0.name"),
        (body(user("x"), output_config={"effort": "extreme"}), "output_config.effort"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [user("x")]}, "model"),
    ],
)
def test_validation_errors_name_the_field(bad: dict[str, Any], param: str) -> None:
    error = invalid(bad)
    assert error.param == param
    assert error.message.startswith(f"{param}: ")


def test_unknown_block_type_message_lists_the_choices() -> None:
    message = invalid(body(user([{"type": "video"}]))).message
    assert "unsupported type 'video'" in message and "tool_result" in message


def test_non_object_body() -> None:
    assert invalid([1, 2]).param is None


# --- tools and options -------------------------------------------------------------------------------


def test_server_tools_are_dropped_and_reported() -> None:
    conversation = anthropic_conversation(
        body(
            user("x"),
            tools=[
                {
                    "name": "Read",
                    "description": "Reads",
                    "input_schema": {"type": "object"},
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "custom", "name": "Mine", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                {"type": "bash_20250124", "name": "bash"},
                {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            ],
        )
    )
    assert [t.name for t in conversation.tools] == ["Read", "Mine"]
    assert conversation.dropped_tools == ("web_search", "bash", "str_replace_based_edit_tool")


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        (None, ToolChoiceAuto(), True),
        ({"type": "auto"}, ToolChoiceAuto(), True),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoiceAny(), False),
        ({"type": "tool", "name": "Read"}, ToolChoiceTool("Read"), True),
        ({"type": "none"}, ToolChoiceNone(), True),
    ],
)
def test_tool_choice(choice: dict[str, Any] | None, expected: object, parallel: bool) -> None:
    conversation = anthropic_conversation(body(user("x"), tool_choice=choice))
    assert (conversation.tool_choice, conversation.parallel_tool_calls) == (expected, parallel)


@pytest.mark.parametrize(
    ("thinking", "output_config", "expected"),
    [
        (None, None, ThinkingOff()),
        ({"type": "disabled"}, None, ThinkingOff()),
        ({"type": "enabled", "budget_tokens": 8000}, None, ThinkingEnabled(8000)),
        ({"type": "enabled"}, None, ThinkingEnabled(20000)),
        ({"type": "adaptive"}, None, ThinkingAdaptive("high")),
        ({"type": "adaptive"}, {"effort": "max"}, ThinkingAdaptive("max")),
        (None, {"effort": "low"}, ThinkingOff()),
    ],
)
def test_thinking_requests(thinking: Any, output_config: Any, expected: object) -> None:
    assert (
        anthropic_conversation(body(user("x"), thinking=thinking, output_config=output_config)).thinking
        == expected
    )


def test_thinking_tags_only_when_asked() -> None:
    plain = anthropic_to_kiro(body(user("x")))
    assert "<thinking_mode>" not in json.dumps(plain.payload)
    assert not plain.thinking
    adaptive = anthropic_to_kiro(
        body(user("x"), thinking={"type": "adaptive"}, output_config={"effort": "max"})
    )
    assert current(adaptive.payload)["content"].startswith(
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>max</thinking_effort>\n"
    )
    low = anthropic_to_kiro(body(user("x"), thinking={"type": "enabled", "budget_tokens": 10}))
    assert "<max_thinking_length>1024</max_thinking_length>" in current(low.payload)["content"]


def test_stop_sequences_stream_and_metadata_session() -> None:
    request = anthropic_to_kiro(
        body(
            user("x"),
            stop_sequences=["\n\nHuman:", ""],
            stream=True,
            metadata={"user_id": f"user_abc_account__session_{SESSION}"},
        )
    )
    assert request.stop_sequences == ("\n\nHuman:",)
    assert request.stream and not request.include_usage
    assert request.payload["conversationState"]["conversationId"] == SESSION


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        (f"user_0f_account_a1_session_{SESSION}", SESSION),
        (json.dumps({"device_id": "d", "account_uuid": "", "session_id": SESSION.upper()}), SESSION),
        (json.dumps({"session_id": "not-a-uuid"}), None),
        ("plain-user", None),
        ("", None),
    ],
)
def test_conversation_id_from_user_id(user_id: str, expected: str | None) -> None:
    assert conversation_id_from_user_id(user_id) == expected


def test_without_a_session_each_request_gets_a_fresh_conversation_id() -> None:
    first = anthropic_to_kiro(body(user("x")))
    second = anthropic_to_kiro(body(user("x")))
    assert (
        first.payload["conversationState"]["conversationId"]
        != second.payload["conversationState"]["conversationId"]
    )


def test_count_tokens_validates_and_estimates() -> None:
    small = count_anthropic_tokens({"model": "claude-sonnet-4-5", "messages": [user("hi")]})
    big = count_anthropic_tokens(
        {
            "model": "claude-sonnet-4-5",
            "system": "S" * 4000,
            "messages": [
                user(
                    [
                        {"type": "text", "text": "hi"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ]
                )
            ],
            "tools": [{"name": "Read", "description": "d" * 400, "input_schema": {"type": "object"}}],
        }
    )
    assert 0 < small < big
    with pytest.raises(InvalidRequest):
        count_anthropic_tokens({"model": "claude-sonnet-4-5", "messages": [user([{"type": "nope"}])]})


def test_count_tokens_matches_the_messages_estimate() -> None:
    data = json.loads((FIXTURES / "claude_code.json").read_text())
    assert count_anthropic_tokens(data) == anthropic_to_kiro(data).input_tokens


# --- the Claude Code golden fixture ------------------------------------------------------------------


def test_golden_claude_code() -> None:
    data = json.loads((FIXTURES / "claude_code.json").read_text())
    request = anthropic_to_kiro(data)
    payload = request.payload
    assert_kiro_valid(payload, 600_000)
    assert request.kiro_model_id == "claude-sonnet-4.5"
    assert request.thinking and request.stream
    assert request.dropped_tools == ("web_search",)
    assert payload["conversationState"]["conversationId"] == SESSION
    assert set(request.repairs) == {"fold_thinking", "merge_same_role", "fill_empty_text"}

    specs = current(payload)["userInputMessageContext"]["tools"]
    assert len(specs) == 26
    by_name = {s["toolSpecification"]["name"]: s["toolSpecification"] for s in specs}
    long_names = [n for n in request.tool_names.values()]
    assert all(len(n) > 64 for n in long_names) and len(long_names) == 2
    for alias, original in request.tool_names.items():
        assert len(alias) <= 64 and alias in by_name and alias[:40] == original[:40]
    bash = by_name["Bash"]["description"]
    assert bash == "[Full documentation in system prompt under '## Tool: Bash']"
    assert len(by_name["Task"]["description"]) == 9_400, "descriptions up to 10,000 characters stay"
    assert by_name["AskUserQuestion"]["description"] == "Tool: AskUserQuestion"

    first = history(payload)[0]["userInputMessage"]["content"]
    assert first.startswith(
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>24576</max_thinking_length>"
    )
    assert "You are Claude Code" in first and "## Tool: Bash\n1. Usage notes for Bash" in first
    assert first.endswith("fix the failing test in tests/test_app.py.")

    screenshot = history(payload)[3]["assistantResponseMessage"]["toolUses"][0]
    assert request.tool_names[screenshot["name"]].startswith("mcp__claude_in_chrome")
    images_turn = history(payload)[4]["userInputMessage"]
    assert images_turn["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert images_turn["userInputMessageContext"]["toolResults"][0]["status"] == "success"
    assert (
        history(payload)[2]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]["status"]
        == "error"
    )

    merged = history(payload)[5]["assistantResponseMessage"]
    assert merged["content"] == "The page shows a server error. Let me read\n\nLet me read the handler."
    message = current(payload)
    assert message["content"] == "[Request interrupted by user]\n\nAlso check the README while you are at it."
    assert [r["toolUseId"] for r in message["userInputMessageContext"]["toolResults"]] == [
        "toolu_01C",
        "toolu_01D",
    ]
    assert "additionalProperties" not in json.dumps(specs) and "$schema" not in json.dumps(specs)


# --- property: well-shaped Anthropic conversations ---------------------------------------------------

IDS = st.sampled_from(["t1", "t2"])
TEXT = st.sampled_from(["", "x", "{"])
USER_BLOCKS = st.one_of(
    TEXT.map(lambda t: {"type": "text", "text": t}),
    st.just(image()),
    st.builds(
        lambda i, t, e: {"type": "tool_result", "tool_use_id": i, "content": t, "is_error": e},
        IDS,
        TEXT,
        st.booleans(),
    ),
)
ASSISTANT_BLOCKS = st.one_of(
    TEXT.map(lambda t: {"type": "text", "text": t}),
    TEXT.map(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}),
    st.builds(
        lambda i, n: {"type": "tool_use", "id": i, "name": n, "input": {"": 0}},
        IDS,
        st.sampled_from(["Read", "m" * 80]),
    ),
)
MESSAGES = st.lists(
    st.one_of(
        st.builds(user, st.one_of(TEXT, st.lists(USER_BLOCKS, max_size=3))),
        st.builds(assistant, st.one_of(TEXT, st.lists(ASSISTANT_BLOCKS, max_size=3))),
    ),
    min_size=1,
    max_size=7,
)


@settings(max_examples=200, deadline=None)
@given(MESSAGES, st.booleans())
def test_well_shaped_anthropic_conversations_always_give_valid_payloads(
    messages: list[dict[str, Any]], tools: bool
) -> None:
    declared = [{"name": "Read", "input_schema": {"type": "object", "required": None}}] if tools else None
    request = anthropic_to_kiro(body(*messages, tools=declared))
    assert_kiro_valid(request.payload)


def test_mid_conversation_system_message_keeps_its_place_as_user_side_text() -> None:
    """Claude Code 2.1+ sends ``role: system`` inside ``messages`` (beta mid-conversation-system)."""
    request = anthropic_to_kiro(
        {
            "model": "claude-opus-4-8",
            "max_tokens": 64000,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
                {"role": "system", "content": "Available agent types: claude, Explore"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "again"},
            ],
        }
    )
    history = request.payload["conversationState"]["history"]
    first_user = history[0]["userInputMessage"]["content"]
    assert "Say hello" in first_user
    assert "<system-message>\nAvailable agent types: claude, Explore\n</system-message>" in first_user
    assert history[1]["assistantResponseMessage"]["content"] == "Hello!"


def test_system_message_with_an_image_is_refused_naming_the_block() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    error = invalid(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}, {"role": "system", "content": [image]}],
        }
    )
    assert error.param == "messages.1.content.0"
