"""``/v1/messages`` through the official ``anthropic`` SDK, sync and async, against the fake Kiro."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import anthropic
import httpx
import pytest

from ..fake_kiro.replies import (
    Delay,
    Reply,
    Stall,
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
HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
).decode()
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def last_body(gateway: Gateway) -> dict[str, Any]:
    return gateway.fake.requests[-1].body


def sse_events(gateway: Gateway, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The raw SSE events of a streamed /v1/messages call, in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/messages?beta=true",
        json={**body, "stream": True},
        headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01"},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        name = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_non_streaming_text(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Hello from Kiro.", chunks=3, context_pct=20.0, credits=0.25))
    raw = gateway.anthropic().messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=HELLO)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello from Kiro."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 40_000
    assert message.usage.output_tokens > 0
    assert raw.headers["x-kiro-credits"] == "0.25"


def test_streaming_event_order_is_exact(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Ordered events.", chunks=3))
    names = [name for name, _ in sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO})]
    names = [n for n in names if n != "ping"]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_streaming_with_the_sdk_accumulates_the_message(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Accumulated by the SDK.", chunks=4))
    with gateway.anthropic().messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Accumulated by the SDK."
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0


def test_async_streaming(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Async messages.", chunks=2))

    async def run() -> str:
        client = gateway.async_anthropic()
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            text = "".join([t async for t in stream.text_stream])
        await client.close()
        return text

    assert asyncio.run(run()) == "Async messages."


def test_system_blocks_and_metadata_are_accepted(gateway: Gateway) -> None:
    gateway.anthropic().messages.create(
        model=MODEL,
        max_tokens=100,
        system=[{"type": "text", "text": "SYSTEM-BLOCK", "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": "user_abc_account__session_123e4567-e89b-12d3-a456-426614174000"},
        messages=HELLO,
    )
    assert "SYSTEM-BLOCK" in current(last_body(gateway))["content"]


# ---- tools ----------------------------------------------------------------------------------------


def test_streamed_tool_use_with_input_json_deltas(gateway: Gateway) -> None:
    gateway.enqueue(
        tool_reply(
            "get_weather", {"city": "Lima"}, fragments=5, tool_use_id="toolu_1", text_before="Checking."
        )
    )
    events = sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO, "tools": [WEATHER]})
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [s["type"] for s in starts] == ["text", "tool_use"]
    assert starts[1]["id"] == "toolu_1" and starts[1]["name"] == "get_weather" and starts[1]["input"] == {}
    partials = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len(partials) >= 3
    assert json.loads("".join(partials)) == {"city": "Lima"}
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"


def test_tool_use_through_the_sdk(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("get_weather", {"city": "Rome"}))
    message = gateway.anthropic().messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, tools=[WEATHER]
    )
    block = message.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Rome"}
    assert message.stop_reason == "tool_use"


def test_tool_result_with_image_round_trip(gateway: Gateway) -> None:
    gateway.anthropic().messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Screenshot the weather"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {"city": "Kyiv"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_7",
                        "content": [
                            {"type": "text", "text": "Cloudy"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                            },
                        ],
                    }
                ],
            },
        ],
    )
    message = current(last_body(gateway))
    assert message["userInputMessageContext"]["toolResults"][0]["toolUseId"] == "toolu_7"
    assert message["images"] == [{"format": "png", "source": {"bytes": PNG}}]


def test_long_tool_names_are_aliased_upstream_and_restored(gateway: Gateway) -> None:
    long_name = "mcp__very_long_server_name_for_testing__" + "do_something_really_specific_" * 2
    assert len(long_name) > 64
    tool = {
        "name": long_name,
        "description": "x" * 12_000,
        "input_schema": {"type": "object", "properties": {}},
    }
    gateway.anthropic().messages.create(model=MODEL, max_tokens=50, messages=HELLO, tools=[tool])
    alias = current(last_body(gateway))["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"]
    assert len(alias) <= 64 and alias != long_name
    gateway.enqueue(tool_reply(alias, {}))
    message = gateway.anthropic().messages.create(model=MODEL, max_tokens=50, messages=HELLO, tools=[tool])
    assert message.content[-1].type == "tool_use" and message.content[-1].name == long_name


def test_server_tools_are_dropped_and_said_so(gateway: Gateway) -> None:
    raw = gateway.anthropic().messages.with_raw_response.create(
        model=MODEL,
        max_tokens=50,
        messages=HELLO,
        tools=[WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],  # type: ignore[list-item]
    )
    assert raw.headers["x-kiro-tray-dropped-tools"] == "web_search"
    names = [
        t["toolSpecification"]["name"]
        for t in current(last_body(gateway))["userInputMessageContext"]["tools"]
    ]
    assert names == ["get_weather"]


# ---- thinking, stop, history ----------------------------------------------------------------------


def test_thinking_blocks_when_requested(gateway: Gateway) -> None:
    gateway.enqueue(thinking_reply("Considering the options.", "Go with B."))
    message = gateway.anthropic().messages.create(
        model=MODEL, max_tokens=4000, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 2048}
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert "Considering the options." in message.content[0].thinking  # type: ignore[union-attr]
    assert message.content[1].text.strip() == "Go with B."  # type: ignore[union-attr]
    assert "<max_thinking_length>2048</max_thinking_length>" in json.dumps(last_body(gateway))


def test_streamed_thinking_through_the_sdk(gateway: Gateway) -> None:
    gateway.enqueue(thinking_reply("Step by step.", "Done."))
    with gateway.anthropic().messages.stream(
        model=MODEL, max_tokens=4000, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 2048}
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking"


def test_stop_sequences(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("alpha beta ### gamma", chunks=5))
    message = gateway.anthropic().messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, stop_sequences=["###"]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "###"
    assert message.content[0].text == "alpha beta "  # type: ignore[union-attr]


def test_consecutive_same_role_turns_and_prefill_are_repaired(gateway: Gateway) -> None:
    raw = gateway.anthropic().messages.with_raw_response.create(
        model=MODEL,
        max_tokens=50,
        messages=[
            {"role": "assistant", "content": "I start"},
            {"role": "user", "content": "first"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "Prefill:"},
        ],
    )
    assert raw.parse().content
    assert raw.headers.get("x-kiro-tray-repairs")
    record = next(r for r in gateway.service.store if r.request_id == raw.headers["x-request-id"])
    assert record.repairs


def test_count_tokens(gateway: Gateway) -> None:
    small = gateway.anthropic().messages.count_tokens(model=MODEL, messages=HELLO)
    big = gateway.anthropic().messages.count_tokens(
        model=MODEL,
        system="You are careful. " * 200,
        messages=HELLO,
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert 0 < small.input_tokens < big.input_tokens
    assert gateway.fake.requests == []  # counted locally, nothing sent upstream


# ---- errors ---------------------------------------------------------------------------------------


def test_bad_body_is_a_400_in_the_anthropic_envelope(gateway: Gateway) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        gateway.anthropic().post(
            "/v1/messages", body={"model": MODEL, "max_tokens": "many", "messages": HELLO}, cast_to=object
        )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in caught.value.message


def test_context_too_long(gateway: Gateway) -> None:
    gateway.enqueue(error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"))
    with pytest.raises(anthropic.BadRequestError, match="context"):
        gateway.anthropic().messages.create(model=MODEL, max_tokens=50, messages=HELLO)


@ALLOW_RETRIES
def test_upstream_overloaded_is_529_overloaded_error(gateway: Gateway) -> None:
    gateway.enqueue(*[error_reply(503, "Service Unavailable", None)] * 3)
    with pytest.raises(anthropic.APIStatusError) as caught:
        gateway.anthropic().messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_mid_stream_error_is_an_error_event(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("partial"), KiroException("InternalServerException", "kaput")]))
    events = sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO})
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "error" and "kaput" in events[-1][1]["error"]["message"]
    assert "message_stop" not in [n for n, _ in events]


def test_cut_tool_call_never_looks_finished(gateway: Gateway) -> None:
    gateway.enqueue(Reply([ToolUse("t9", "get_weather", '{"city": "Ri')]))  # stream ends, no stop:true
    events = sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO, "tools": [WEATHER]})
    names = [n for n, _ in events]
    assert names[-1] == "error" and "message_stop" not in names


@pytest.mark.gateway_settings(stream_read_timeout=0.5)
def test_stall_mid_stream_times_out_as_an_error_event(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("thinking about it"), Stall()]))
    events = sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO})
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "timeout_error"


@pytest.mark.gateway_settings(ping_interval=0.05)
def test_pings_flow_while_upstream_is_quiet(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("a"), Delay(0.4), Text("b")]))
    names = [n for n, _ in sse_events(gateway, {"model": MODEL, "max_tokens": 100, "messages": HELLO})]
    assert names.count("ping") >= 3
