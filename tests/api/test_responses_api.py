"""``/v1/responses`` through the official ``openai`` SDK, sync and async, against the fake Kiro.

Every streamed test checks the event order and the ``sequence_number``s (:func:`checked`)."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ..fake_kiro.replies import (
    ContextUsage,
    Disconnect,
    Reply,
    Stall,
    Text,
    ToolUse,
    error_reply,
    text_reply,
    thinking_reply,
    tool_reply,
)
from ..harness import TEST_KEY, Gateway
from ..kiro_payloads import current

MODEL = "claude-sonnet-4-5"
PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
).decode()
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch to files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'},
}
PATCH = '*** Begin Patch\n*** Add File: a.txt\n+hello "quoted" \\ back\n+héllo ✓\n*** End Patch'


def kiro_bodies(gateway: Gateway) -> list[dict[str, Any]]:
    return [r.body for r in gateway.fake.requests if r.path == "/generateAssistantResponse"]


def last_body(gateway: Gateway) -> dict[str, Any]:
    return kiro_bodies(gateway)[-1]


def context(body: dict[str, Any]) -> dict[str, Any]:
    return dict(current(body).get("userInputMessageContext") or {})


def all_text(body: dict[str, Any]) -> str:
    return json.dumps(body["conversationState"], ensure_ascii=False)


def checked(events: list[Any]) -> list[Any]:
    """The stream's events after checking the Responses rules: strictly increasing sequence numbers from
    0, created/in_progress first, one terminal event last, every item added before its deltas and done
    after them, content parts opened and closed inside their item."""
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events))), numbers
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert kinds[-1] in terminal and not terminal & set(kinds[:-1]), kinds
    open_items: dict[int, str] = {}
    closed: set[int] = set()
    for event in events[2:-1]:
        index = getattr(event, "output_index", None)
        if event.type == "response.output_item.added":
            assert index not in open_items and index not in closed
            open_items[index] = event.item.id
        elif event.type == "response.output_item.done":
            assert open_items.pop(index) == event.item.id
            closed.add(index)
        else:
            assert index in open_items, (event.type, index)
            if hasattr(event, "item_id"):
                assert event.item_id == open_items[index]
    assert not open_items or kinds[-1] == "response.failed"
    return events


def of_type(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


# ---- text -----------------------------------------------------------------------------------------


def test_non_streaming_text(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("The answer is 42.", chunks=4, context_pct=10.0, credits=0.05))
    reply = gateway.openai().responses.create(model=MODEL, input="Hello there", instructions="Be brief.")
    assert reply.id.startswith("resp_") and reply.object == "response" and reply.status == "completed"
    assert reply.output_text == "The answer is 42."
    assert reply.output[0].type == "message" and reply.output[0].id.startswith("msg_")
    assert reply.model == MODEL and reply.instructions == "Be brief."
    usage = reply.usage
    assert usage is not None and usage.input_tokens == 20_000  # 10 % of the 200k window
    assert usage.output_tokens > 0 and usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    sent = all_text(last_body(gateway))
    assert "Be brief." in sent and "Hello there" in sent
    assert current(last_body(gateway))["modelId"] == "claude-sonnet-4.5"


def test_streaming_text_events_are_spec_exact(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("Streaming works fine.", chunks=5))
    events = checked(list(gateway.openai().responses.create(model=MODEL, input="Hi", stream=True)))
    kinds = [e.type for e in events]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = of_type(events, "response.output_text.delta")
    assert len(deltas) == 5 and "".join(d.delta for d in deltas) == "Streaming works fine."
    assert of_type(events, "response.output_text.done")[0].text == "Streaming works fine."
    final = events[-1].response
    assert final.output_text == "Streaming works fine." and final.usage is not None
    assert events[0].response.id == final.id and events[0].response.status == "in_progress"


def test_async_create_and_stream(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("async one"), text_reply("async two", chunks=2))

    async def run() -> tuple[str, list[Any]]:
        async with gateway.async_openai() as client:
            first = await client.responses.create(model=MODEL, input="one")
            stream = await client.responses.create(model=MODEL, input="two", stream=True)
            return first.output_text, [event async for event in stream]

    text, events = asyncio.run(run())
    assert text == "async one"
    assert checked(events)[-1].response.output_text == "async two"


def test_stream_helper_and_final_response(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("helper text", chunks=3))
    with gateway.openai().responses.stream(model=MODEL, input="Hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    checked(events)
    assert "".join(e.delta for e in of_type(events, "response.output_text.delta")) == "helper text"
    assert final.output_text == "helper text"


def test_async_stream_helper(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("get_weather", {"city": "Oslo"}, fragments=3))

    async def run() -> tuple[list[Any], Any]:
        async with (
            gateway.async_openai() as client,
            client.responses.stream(model=MODEL, input="Hi", tools=[WEATHER]) as stream,
        ):
            events = [event async for event in stream]
            return events, await stream.get_final_response()

    events, final = asyncio.run(run())
    checked(events)
    call = final.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}


# ---- tools ----------------------------------------------------------------------------------------


def test_function_call_round_trip(gateway: Gateway) -> None:
    gateway.enqueue(
        tool_reply(
            "get_weather", {"city": "Paris"}, fragments=4, tool_use_id="tooluse_abc", text_before="Checking."
        )
    )
    client = gateway.openai()
    events = checked(
        list(client.responses.create(model=MODEL, input="Weather?", tools=[WEATHER], stream=True))
    )
    deltas = of_type(events, "response.function_call_arguments.delta")
    assert len(deltas) == 4 and json.loads("".join(d.delta for d in deltas)) == {"city": "Paris"}
    done = of_type(events, "response.function_call_arguments.done")[0]
    assert done.name == "get_weather" and json.loads(done.arguments) == {"city": "Paris"}
    final = events[-1].response
    message, call = final.output
    assert message.type == "message" and message.content[0].text == "Checking."
    assert call.type == "function_call" and call.call_id == "tooluse_abc" and call.id.startswith("fc_")
    tools = context(last_body(gateway))["tools"]
    assert tools[0]["toolSpecification"]["name"] == "get_weather"

    gateway.enqueue(text_reply("It is sunny in Paris."))
    history = [
        {"role": "user", "content": "Weather?"},
        *[item.model_dump(exclude_none=True) for item in final.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"},
    ]
    reply = client.responses.create(model=MODEL, input=history, tools=[WEATHER])
    assert reply.output_text == "It is sunny in Paris."
    results = context(last_body(gateway))["toolResults"]
    assert results[0]["toolUseId"] == "tooluse_abc" and "sunny, 24C" in json.dumps(results)
    uses = last_body(gateway)["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert uses[0]["toolUseId"] == "tooluse_abc" and uses[0]["input"] == {"city": "Paris"}


def test_custom_tool_streams_its_raw_input(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("apply_patch", {"input": PATCH}, fragments=9, tool_use_id="tooluse_patch"))
    events = checked(
        list(
            gateway.openai().responses.create(model=MODEL, input="Patch it", tools=[APPLY_PATCH], stream=True)
        )
    )
    deltas = of_type(events, "response.custom_tool_call_input.delta")
    assert len(deltas) > 1 and "".join(d.delta for d in deltas) == PATCH
    assert of_type(events, "response.custom_tool_call_input.done")[0].input == PATCH
    call = events[-1].response.output[0]
    assert call.type == "custom_tool_call" and call.input == PATCH and call.call_id == "tooluse_patch"
    spec = context(last_body(gateway))["tools"][0]["toolSpecification"]
    assert spec["name"] == "apply_patch" and "lark" in spec["description"]
    assert spec["inputSchema"]["json"]["properties"]["input"]["type"] == "string"

    gateway.enqueue(text_reply("Patched."))
    history = [
        {"role": "user", "content": "Patch it"},
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"},
    ]
    assert gateway.openai().responses.create(model=MODEL, input=history).output_text == "Patched."
    uses = last_body(gateway)["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert uses[0]["input"] == {"input": PATCH}


def test_namespace_tools_are_flattened_and_mapped_back(gateway: Gateway) -> None:
    namespace = {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "Sub-agents.",
        "tools": [
            {"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}},
            {"type": "function", "name": "wait_agent", "parameters": {"type": "object", "properties": {}}},
        ],
    }
    gateway.enqueue(tool_reply("multi_agent_v1__spawn_agent", {"task": "x"}))
    reply = gateway.openai().responses.create(model=MODEL, input="Spawn", tools=[namespace, WEATHER])
    call = reply.output[0]
    assert call.type == "function_call" and call.name == "spawn_agent" and call.namespace == "multi_agent_v1"
    names = [t["toolSpecification"]["name"] for t in context(last_body(gateway))["tools"]]
    assert names == ["multi_agent_v1__spawn_agent", "multi_agent_v1__wait_agent", "get_weather"]
    assert all(len(n) <= 64 for n in names)


def test_local_shell_call(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("local_shell", {"command": ["echo", "hi"], "working_directory": "/tmp"}))
    reply = gateway.openai().responses.create(model=MODEL, input="Run", tools=[{"type": "local_shell"}])
    call = reply.output[0]
    assert call.type == "local_shell_call" and call.action.command == ["echo", "hi"]
    assert call.action.working_directory == "/tmp"


def test_web_search_is_dropped_with_the_header(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("no search here"))
    raw = gateway.openai().responses.with_raw_response.create(
        model=MODEL, input="Search", tools=[{"type": "web_search"}, WEATHER]
    )
    assert raw.headers["x-kiro-tray-dropped-tools"] == "web_search"
    assert raw.parse().output_text == "no search here"
    assert [t["toolSpecification"]["name"] for t in context(last_body(gateway))["tools"]] == ["get_weather"]


@pytest.mark.parametrize(
    ("choice", "needle"),
    [
        ("required", "must call at least one"),
        ({"type": "function", "name": "get_weather"}, "must call the tool `get_weather`"),
        ("none", "do not call any tool"),
    ],
)
def test_tool_choice_reaches_kiro(gateway: Gateway, choice: Any, needle: str) -> None:
    gateway.openai().responses.create(model=MODEL, input="Hi", tools=[WEATHER], tool_choice=choice)
    assert needle in all_text(last_body(gateway))


# ---- structured output ----------------------------------------------------------------------------

PERSON = {
    "type": "json_schema",
    "name": "person",
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_json_schema_through_a_forced_tool(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("person", {"name": "Ada", "age": 36}, fragments=4))
    events = checked(
        list(
            gateway.openai().responses.create(model=MODEL, input="Who?", text={"format": PERSON}, stream=True)
        )
    )
    final = events[-1].response
    assert json.loads(final.output_text) == {"name": "Ada", "age": 36}
    assert final.output[0].type == "message" and final.text.format.type == "json_schema"
    sent = context(last_body(gateway))
    assert [t["toolSpecification"]["name"] for t in sent["tools"]] == ["person"]
    assert "must call the tool `person`" in all_text(last_body(gateway))


def test_json_schema_mismatch_fails_clearly(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("person", {"name": "Ada", "age": -1}))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai().responses.create(model=MODEL, input="Who?", text={"format": PERSON})
    assert caught.value.status_code == 502 and "$.age" in caught.value.message

    gateway.enqueue(tool_reply("person", {"name": "Ada"}))
    events = checked(
        list(
            gateway.openai().responses.create(model=MODEL, input="Who?", text={"format": PERSON}, stream=True)
        )
    )
    failed = events[-1]
    assert failed.type == "response.failed" and "age" in failed.response.error.message


def test_json_schema_with_other_tools_lets_the_model_call_them(gateway: Gateway) -> None:
    gateway.enqueue(tool_reply("get_weather", {"city": "Rome"}))
    reply = gateway.openai().responses.create(
        model=MODEL, input="Hi", tools=[WEATHER], text={"format": PERSON}
    )
    assert reply.output[0].type == "function_call"
    names = [t["toolSpecification"]["name"] for t in context(last_body(gateway))["tools"]]
    assert names == ["get_weather", "person"]
    assert "must call at least one" in all_text(last_body(gateway))


# ---- reasoning and images -------------------------------------------------------------------------


def test_reasoning_summary_streams_and_folds_back(gateway: Gateway) -> None:
    gateway.enqueue(thinking_reply("Let me think about primes.", "7 is prime."))
    client = gateway.openai()
    events = checked(
        list(
            client.responses.create(
                model=MODEL,
                input="Is 7 prime?",
                reasoning={"effort": "high", "summary": "auto"},
                include=["reasoning.encrypted_content"],
                stream=True,
            )
        )
    )
    assert "<thinking_mode>enabled</thinking_mode>" in all_text(last_body(gateway))
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_part.added") < kinds.index("response.output_text.delta")
    summary = "".join(e.delta for e in of_type(events, "response.reasoning_summary_text.delta"))
    assert summary == "Let me think about primes."
    final = events[-1].response
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.encrypted_content
    assert message.content[0].text.strip() == "7 is prime."
    assert final.usage.output_tokens_details.reasoning_tokens > 0

    gateway.enqueue(text_reply("ok"))
    hidden = {**reasoning.model_dump(exclude_none=True), "summary": []}  # the text rides in encrypted_content
    client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Is 7 prime?"},
            hidden,
            message.model_dump(exclude_none=True),
            {"role": "user", "content": "And 9?"},
        ],
    )
    assert "Let me think about primes." in all_text(last_body(gateway))


def test_reasoning_without_summary_has_no_summary_text(gateway: Gateway) -> None:
    gateway.enqueue(thinking_reply("secret steps", "done"))
    events = checked(
        list(
            gateway.openai().responses.create(
                model=MODEL, input="x", reasoning={"effort": "low"}, stream=True
            )
        )
    )
    assert not of_type(events, "response.reasoning_summary_text.delta")
    assert events[-1].response.output[0].summary == []


def test_data_url_image_goes_to_kiro(gateway: Gateway) -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
    ]
    gateway.openai().responses.create(model=MODEL, input=[{"role": "user", "content": content}])
    images = current(last_body(gateway))["images"]
    assert images == [{"format": "png", "source": {"bytes": PNG}}]


# ---- stored responses -----------------------------------------------------------------------------


def test_previous_response_id_chains_three_turns(gateway: Gateway) -> None:
    client = gateway.openai()
    gateway.enqueue(text_reply("first answer"), text_reply("second answer"), text_reply("third answer"))
    one = client.responses.create(model=MODEL, input="turn one", instructions="OLD INSTRUCTIONS")
    two = client.responses.create(model=MODEL, input="turn two", previous_response_id=one.id)
    three = client.responses.create(
        model=MODEL, input="turn three", previous_response_id=two.id, instructions="NEW INSTRUCTIONS"
    )
    assert three.output_text == "third answer" and three.previous_response_id == two.id
    sent = all_text(last_body(gateway))
    for needle in ("turn one", "first answer", "turn two", "second answer", "turn three", "NEW INSTRUCTIONS"):
        assert needle in sent
    assert "OLD INSTRUCTIONS" not in sent  # as at OpenAI, earlier instructions are not carried over
    assert len(last_body(gateway)["conversationState"]["history"]) == 4


def test_unknown_previous_response_id_is_a_404_naming_the_param(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.openai().responses.create(model=MODEL, input="x", previous_response_id="resp_missing")
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["param"] == "previous_response_id" and body["type"] == "invalid_request_error"


def test_retrieve_delete_and_input_items(gateway: Gateway) -> None:
    client = gateway.openai()
    gateway.enqueue(text_reply("stored answer"))
    items = [
        {"role": "user", "content": "first"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "second"}],
            "id": "msg_mine",
        },
    ]
    reply = client.responses.create(model=MODEL, input=items, metadata={"k": "v"})
    got = client.responses.retrieve(reply.id)
    assert got.output_text == "stored answer" and got.metadata == {"k": "v"}
    page = client.responses.input_items.list(reply.id, limit=1, order="asc")
    assert len(page.data) == 1 and page.has_more and page.data[0].content[0].text == "first"
    everything = list(client.responses.input_items.list(reply.id))
    assert everything[0].id == "msg_mine"  # newest first by default
    assert client.responses.delete(reply.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(reply.id)


def test_store_false_keeps_nothing(gateway: Gateway) -> None:
    reply = gateway.openai().responses.create(model=MODEL, input="x", store=False)
    assert reply.store is False
    with pytest.raises(openai.NotFoundError):
        gateway.openai().responses.retrieve(reply.id)


def test_item_reference_is_resolved_from_the_store(gateway: Gateway) -> None:
    client = gateway.openai()
    gateway.enqueue(text_reply("referenced answer"))
    first = client.responses.create(model=MODEL, input="question one")
    client.responses.create(
        model=MODEL,
        input=[{"type": "item_reference", "id": first.output[0].id}, {"role": "user", "content": "go on"}],
    )
    assert "referenced answer" in all_text(last_body(gateway))
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_nope"}])
    assert caught.value.body["param"] == "input.0.id"  # type: ignore[index]


def test_a_tenant_never_sees_another_tenants_responses(gateway: Gateway) -> None:
    tenant = gateway.thread.call(gateway.fake.add_account, None)
    tenant.rotate = False
    mine = gateway.openai().responses.create(model=MODEL, input="private")
    other = gateway.openai(api_key=f"{TEST_KEY}:{tenant.refresh_token}")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model=MODEL, input="x", previous_response_id=mine.id)
    theirs = other.responses.create(model=MODEL, input="theirs")
    assert other.responses.retrieve(theirs.id).id == theirs.id


@pytest.mark.gateway_settings(responses_store_max_items=2)
def test_store_evicts_the_least_recently_used(gateway: Gateway) -> None:
    client = gateway.openai()
    one, two = (client.responses.create(model=MODEL, input=f"r{i}") for i in range(2))
    client.responses.retrieve(one.id)  # one is now the most recently used
    client.responses.create(model=MODEL, input="r3")
    client.responses.retrieve(one.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(two.id)


def test_persisted_store_survives_a_restart(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    gateway.restart_with(responses_store_persist=True)
    reply = gateway.openai().responses.create(model=MODEL, input="remember me")
    gateway.restart_with(responses_store_max_items=500)  # the old app saves at cleanup, the new one loads
    path = next(tmp_path.rglob("responses.json"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert gateway.openai().responses.retrieve(reply.id).output_text == reply.output_text


def test_input_tokens_count(gateway: Gateway) -> None:
    with httpx.Client() as http:
        answer = http.post(
            gateway.url + "/v1/responses/input_tokens",
            json={"model": MODEL, "input": "count these words please", "tools": [WEATHER]},
            headers={"Authorization": f"Bearer {TEST_KEY}"},
        )
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "response.input_tokens" and body["input_tokens"] > 5
    assert not kiro_bodies(gateway)


# ---- limits and errors ----------------------------------------------------------------------------


def test_max_output_tokens_ends_incomplete(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("word " * 400, chunks=40))
    events = checked(
        list(gateway.openai().responses.create(model=MODEL, input="x", max_output_tokens=20, stream=True))
    )
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"


def long_input() -> list[dict[str, str]]:
    """Sixteen turns of 1.5 KB and a short last one: over a 10 KB payload budget unless trimmed."""
    turns = [
        {"role": role, "content": f"{role} {i} " + "x" * 1500}
        for i in range(8)
        for role in ("user", "assistant")
    ]
    return [*turns, {"role": "user", "content": "last"}]


@pytest.mark.gateway_settings(payload_budget_bytes=10_000)
def test_truncation_disabled_refuses_what_auto_trims(gateway: Gateway) -> None:
    long = long_input()
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().responses.create(model=MODEL, input=long, truncation="disabled")
    assert caught.value.code == "context_length_exceeded"
    assert not kiro_bodies(gateway)
    gateway.openai().responses.create(model=MODEL, input=long, truncation="auto")
    assert len(kiro_bodies(gateway)) == 1


@pytest.mark.gateway_settings(payload_budget_bytes=10_000, trim_history=False)
def test_truncation_auto_trims_even_when_the_gateway_would_not(gateway: Gateway) -> None:
    long = long_input()
    with pytest.raises(openai.BadRequestError):
        gateway.openai().responses.create(model=MODEL, input=long)  # no say: TRIM_HISTORY=false stands
    answer = gateway.openai().responses.create(model=MODEL, input=long, truncation="auto")
    assert answer.status == "completed" and len(kiro_bodies(gateway)) == 1


def test_wrong_client_key_is_401(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(api_key="wrong").responses.create(model=MODEL, input="x")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": MODEL, "input": 5}, "input"),
        ({"model": MODEL, "input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
        ({"model": MODEL, "input": "x", "max_output_tokens": "many"}, "max_output_tokens"),
        ({"model": MODEL, "input": "x", "reasoning": {"effort": "enormous"}}, "reasoning.effort"),
        ({"model": MODEL, "input": "x", "tool_choice": 3}, "tool_choice"),
        (
            {"model": MODEL, "input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}},
            "text.format.schema",
        ),
    ],
)
def test_bad_fields_are_400s_naming_them(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    with httpx.Client() as http:
        answer = http.post(
            gateway.url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {TEST_KEY}"}
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_unknown_fields_and_item_types_are_ignored(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("fine"))
    reply = gateway.openai().responses.create(
        model=MODEL,
        input=[
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"role": "user", "content": "hi"},
        ],
        extra_body={
            "client_metadata": {"a": "b"},
            "brand_new_field": 1,
            "prompt_cache_key": "k",
            "service_tier": "auto",
        },
        temperature=0.2,
        top_p=0.9,
        user="me",
        safety_identifier="s",
        text={"verbosity": "low"},
        include=["message.output_text.logprobs"],
    )
    assert reply.output_text == "fine"


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (error_reply(402, "Monthly limit", "MONTHLY_REQUEST_COUNT"), 429),
        (error_reply(500, "Internal", None), 502),
    ],
)
@pytest.mark.gateway_settings(max_retries=0)
def test_upstream_errors_are_real_statuses(gateway: Gateway, reply: Reply, status: int) -> None:
    gateway.enqueue(reply)
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai().responses.create(model=MODEL, input="x", stream=True)
    assert caught.value.status_code == status
    assert caught.value.body["type"] in ("insufficient_quota", "api_error")  # type: ignore[index]


@pytest.mark.gateway_settings(first_token_timeout=0.3, max_retries=0)
def test_silent_upstream_is_504(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Stall()]))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai().responses.create(model=MODEL, input="x")
    assert caught.value.status_code == 504


def test_cut_stream_ends_in_response_failed(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("half of it"), ToolUse("t1", "get_weather", '{"ci'), Disconnect()]))
    events = checked(
        list(gateway.openai().responses.create(model=MODEL, input="x", tools=[WEATHER], stream=True))
    )
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error.code and failed.response.error.message


def test_in_stream_throttling_ends_in_response_failed(gateway: Gateway) -> None:
    from ..fake_kiro.replies import ExceptionFrame

    gateway.enqueue(
        Reply([Text("start"), ExceptionFrame("ThrottlingException", "slow down"), ContextUsage(3.0)])
    )
    events = checked(list(gateway.openai().responses.create(model=MODEL, input="x", stream=True)))
    assert events[-1].type == "response.failed" and "slow down" in events[-1].response.error.message


def test_request_record_and_metrics_say_responses(gateway: Gateway) -> None:
    gateway.openai().responses.create(model=MODEL, input="record me")
    record = list(gateway.service.store)[-1]
    assert record.api == "responses" and record.model == MODEL
    with httpx.Client() as http:
        metrics = http.get(gateway.url + "/metrics", headers={"Authorization": f"Bearer {TEST_KEY}"}).text
    assert "/v1/responses" in metrics


def test_concurrent_async_requests_keep_their_own_ids(gateway: Gateway) -> None:
    async def run() -> list[Any]:
        async with gateway.async_openai() as client:
            calls = (client.responses.create(model=MODEL, input=f"n{i}") for i in range(4))
            return list(await asyncio.gather(*calls))

    replies = asyncio.run(run())
    assert len({r.id for r in replies}) == 4
    for reply in replies:
        assert gateway.openai().responses.retrieve(reply.id).output_text == reply.output_text


@pytest.mark.gateway_settings(stream_read_timeout=0.5)
def test_stalled_stream_ends_in_response_failed(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("thinking about it"), Stall()]))
    events = checked(list(gateway.openai().responses.create(model=MODEL, input="x", stream=True)))
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "timeout"


@pytest.mark.gateway_settings(max_retries=0)
def test_throttled_upstream_is_429_with_retry_after(gateway: Gateway) -> None:
    gateway.enqueue(error_reply(429, "Too many requests, please wait before trying again.", None))
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.openai().responses.create(model=MODEL, input="x")
    assert caught.value.response.headers.get("retry-after")


def test_remote_image_that_cannot_be_fetched_is_a_400_naming_it(gateway: Gateway) -> None:
    image = {"type": "input_image", "image_url": "http://127.0.0.1:9/missing.png"}
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().responses.create(model=MODEL, input=[{"role": "user", "content": [image]}])
    assert "image" in caught.value.message.lower()
    assert not kiro_bodies(gateway)
