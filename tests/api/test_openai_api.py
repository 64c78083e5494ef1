"""``/v1/chat/completions`` through the official ``openai`` SDK, sync and async, against the fake Kiro."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import openai
import pytest

from ..fake_kiro.replies import (
    ContextUsage,
    Disconnect,
    Reply,
    Text,
    ToolUse,
    error_reply,
    text_reply,
    thinking_reply,
    tool_reply,
)
from ..fake_kiro.replies import ExceptionFrame as KiroException
from ..harness import ALLOW_RETRIES, Gateway
from ..kiro_payloads import current

MODEL = "claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "Hello there"}]
PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
).decode()


def last_body(gateway: Gateway) -> dict[str, Any]:
    return gateway.fake.requests[-1].body


# ---- text -----------------------------------------------------------------------------------------


def test_non_streaming_text(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("The answer is 42.", chunks=4, context_pct=10.0, credits=0.05))
    reply = gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "The answer is 42."
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 20_000  # 10% of the 200k window, from contextUsageEvent
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert (reply.usage.model_extra or {}).get("credits_used") == pytest.approx(0.05)
    assert current(last_body(gateway))["modelId"] == "claude-sonnet-4.5"


def test_streaming_text_is_spec_exact(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Streaming works fine.", chunks=5))
    chunks = list(gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming works fine."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked


def test_streaming_include_usage(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Counting tokens.", chunks=2, context_pct=5.0, credits=0.01))
    chunks = list(
        gateway.openai().chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None and usage_chunk.usage.prompt_tokens == 10_000
    assert usage_chunk.usage.completion_tokens > 0


def test_async_streaming(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Async hello.", chunks=3))

    async def run() -> str:
        client = gateway.async_openai()
        stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return "".join(parts)

    assert asyncio.run(run()) == "Async hello."


def test_system_developer_and_multipart_content_reach_kiro(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "SYSTEM-RULES"},
            {"role": "developer", "content": "DEVELOPER-RULES"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}],
            },
        ],
    )
    content = current(last_body(gateway))["content"]
    for needle in ("SYSTEM-RULES", "DEVELOPER-RULES", "part one", "part two"):
        assert needle in content


# ---- tools ----------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_streamed_tool_call_arrives_in_fragments(gateway: Gateway) -> None:
    gateway.enqueue(
        tool_reply("get_weather", {"city": "Paris", "unit": "celsius"}, fragments=6, tool_use_id="tu_1")
    )
    chunks = list(
        gateway.openai().chat.completions.create(
            model=MODEL, messages=HELLO, tools=[WEATHER_TOOL], stream=True
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id == "tu_1" and deltas[0].type == "function"
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert len(deltas) >= 4  # arguments streamed as they arrived, not in one piece at the end
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    tools = current(last_body(gateway))["userInputMessageContext"]["tools"]
    assert tools[0]["toolSpecification"]["name"] == "get_weather"


def test_non_streaming_tool_call(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("get_weather", {"city": "Oslo"}, text_before="Let me check."))
    reply = gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, tools=[WEATHER_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


def test_tool_result_round_trip(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "Sunny, 21C"},
        ],
    )
    body = last_body(gateway)
    results = current(body)["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == "call_9"
    assert "Sunny, 21C" in json.dumps(results[0]["content"])
    history = body["conversationState"]["history"]
    assert history[-1]["assistantResponseMessage"]["toolUses"][0]["input"] == {"city": "Oslo"}


def test_cursor_flat_tools_are_accepted(gateway: Gateway) -> None:
    flat = {
        "type": "function",
        "name": "read_file",
        "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
    gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, tools=[flat])  # type: ignore[list-item]
    tools = current(last_body(gateway))["userInputMessageContext"]["tools"]
    assert tools[0]["toolSpecification"]["name"] == "read_file"


# ---- images ---------------------------------------------------------------------------------------


def test_data_url_image_goes_to_userInputMessage_images(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    images = current(last_body(gateway))["images"]
    assert images == [{"format": "png", "source": {"bytes": PNG}}]


def test_remote_image_url_that_cannot_be_fetched_is_a_clear_400(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": gateway.fake.url + "/nope.png"}}],
                }
            ],
        )
    assert "Image URL" in caught.value.message


# ---- thinking, stop, limits -----------------------------------------------------------------------


def test_reasoning_effort_maps_to_thinking_and_reasoning_content(gateway: Gateway) -> None:
    gateway.enqueue(thinking_reply("Let me think about this carefully.", "Final answer."))
    chunks = list(
        gateway.openai().chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, reasoning_effort="high"
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "think about this carefully" in reasoning
    assert text.strip() == "Final answer."
    assert "<thinking_mode>" in json.dumps(last_body(gateway))


def test_thinking_tags_are_not_injected_unless_asked(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert "thinking_mode" not in json.dumps(last_body(gateway))


def test_stop_sequence_is_applied_by_the_gateway(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("one two STOP three four", chunks=6))
    reply = gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, stop=["STOP"])
    assert reply.choices[0].message.content == "one two "
    assert reply.choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("word " * 400, chunks=40))
    reply = gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, max_tokens=20)
    assert reply.choices[0].finish_reason == "length"


def test_content_length_exception_frame_ends_with_length(gateway: Gateway) -> None:
    gateway.enqueue(
        Reply([Text("partial answer"), KiroException("ContentLengthExceededException", "too long")])
    )
    chunks = list(gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


# ---- errors ---------------------------------------------------------------------------------------


def test_missing_messages_is_a_400_naming_the_field(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(model=MODEL, messages=[])
    assert "messages" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().post("/chat/completions", body={"model": MODEL}, cast_to=object)
    assert "messages" in caught.value.message


def test_wrong_field_type_names_the_field(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().post(
            "/chat/completions",
            body={"model": MODEL, "messages": [{"role": "user", "content": 5}]},
            cast_to=object,
        )
    assert "messages.0.content" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "error", "status", "needle"),
    [
        (
            error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
            openai.BadRequestError,
            400,
            "context",
        ),
        (error_reply(402, "Monthly limit", "MONTHLY_REQUEST_COUNT"), openai.RateLimitError, 429, "quota"),
        (
            error_reply(403, "Your User ID temporarily is suspended", "TEMPORARILY_SUSPENDED"),
            openai.PermissionDeniedError,
            403,
            "suspended",
        ),
        (
            error_reply(400, "Improperly formed request.", None),
            openai.BadRequestError,
            400,
            "Improperly formed",
        ),
    ],
)
def test_upstream_errors_map_to_the_right_status(
    gateway: Gateway, reply: Reply, error: type[openai.APIStatusError], status: int, needle: str
) -> None:
    gateway.enqueue(reply)
    with pytest.raises(error) as caught:
        gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == status
    assert needle.lower() in caught.value.message.lower()


@ALLOW_RETRIES
def test_throttling_after_retries_is_429_with_retry_after(gateway: Gateway) -> None:
    gateway.enqueue(*[error_reply(429, "Too many requests, please wait before trying again.", None)] * 3)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.response.headers.get("retry-after")


@ALLOW_RETRIES
def test_server_errors_are_retried_then_succeed(gateway: Gateway) -> None:
    gateway.enqueue(
        error_reply(500, "Internal", None), error_reply(503, "Unavailable", None), text_reply("recovered")
    )
    reply = gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert reply.choices[0].message.content == "recovered"


@ALLOW_RETRIES
def test_server_errors_after_retries_are_502(gateway: Gateway) -> None:
    gateway.enqueue(*[error_reply(500, "Internal", None)] * 3)
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 502


def test_unknown_model_is_a_clear_error_naming_it(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.openai().chat.completions.create(model="claude-nonexistent-9", messages=HELLO)
    assert "claude-nonexistent-9" in caught.value.message


def test_mid_stream_failure_is_a_stream_error_not_a_normal_end(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("half of it"), ToolUse("t1", "get_weather", '{"ci'), Disconnect()]))
    stream = gateway.openai().chat.completions.create(
        model=MODEL, messages=HELLO, tools=[WEATHER_TOOL], stream=True
    )
    finish: list[str | None] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                finish.append(chunk.choices[0].finish_reason)
    assert not any(finish)  # never a finish_reason for a cut stream


def test_in_stream_throttling_exception_is_a_stream_error(gateway: Gateway) -> None:
    gateway.enqueue(
        Reply([Text("start"), KiroException("ThrottlingException", "slow down"), ContextUsage(3.0)])
    )
    with pytest.raises(openai.APIError, match=r"slow down|overloaded|Throttling"):
        list(gateway.openai().chat.completions.create(model=MODEL, messages=HELLO, stream=True))


# ---- models ---------------------------------------------------------------------------------------


def test_models_list_has_the_seed_models_and_the_accounts(gateway: Gateway) -> None:
    ids = [m.id for m in gateway.openai().models.list()]
    for seed in (
        "claude-opus-4-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4",
        "claude-haiku-4-5",
        "claude-3-7-sonnet-20250219",
    ):
        assert seed in ids
    assert "claude-sonnet-4.6" in ids  # reported by ListAvailableModels for this account


def test_models_in_anthropic_format(gateway: Gateway) -> None:
    page = gateway.anthropic().models.list()
    assert page.has_more is False
    first = page.data[0]
    assert first.type == "model" and first.display_name and first.created_at


@pytest.mark.parametrize(
    ("name", "kiro_id"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5[1m]", "claude-sonnet-4.5"),
        ("claude-4.5-opus-high", "claude-opus-4.5"),
        ("claude-haiku-4-5", "claude-haiku-4.5"),
    ],
)
def test_model_names_are_normalised(gateway: Gateway, name: str, kiro_id: str) -> None:
    reply = gateway.openai().chat.completions.create(model=name, messages=HELLO)
    assert reply.model == name
    assert current(last_body(gateway))["modelId"] == kiro_id
