"""Soak: 500 mixed requests, 10% of them with an injected fault, 32 at a time, through the async SDKs.

Both APIs, streamed and not, plain text, tool calls and thinking. Faults are chosen per request, not per
queue position (concurrency would shuffle a queue): each request names its fault in its own text and the
fake's responder answers accordingly. Every request must end exactly as planned (success with the right
shape, or the right error), and ``/metrics`` must add up to what was sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anthropic
import httpx
import openai
import pytest

from ..fake_kiro.replies import (
    Corrupt,
    Delay,
    Disconnect,
    ExceptionFrame,
    Reply,
    Text,
    error_reply,
    smart_reply,
    throttle_reply,
)
from ..harness import ALLOW_RETRIES, Gateway
from .checks import MODEL, Api, LoopErrors, assert_no_leaks, settled_resources

TOTAL = 500
CONCURRENCY = 32
Shape = Literal["text", "tool", "thinking"]
Fault = Literal["disconnect", "corrupt", "exception", "throttle", "flaky", "invalid"]
FAULTS: tuple[Fault, ...] = ("disconnect", "corrupt", "exception", "throttle", "flaky", "invalid")
#: What each fault ends as: the ones Kiro causes after its first byte are upstream errors.
Ending = Literal["ok", "upstream", "throttled", "invalid"]
ENDINGS: dict[Fault | None, Ending] = {
    None: "ok",
    "flaky": "ok",  # a 500, then success on the retry
    "disconnect": "upstream",
    "corrupt": "upstream",
    "exception": "upstream",
    "throttle": "throttled",
    "invalid": "invalid",
}
MARK = re.compile(r"\[soak:(\d+):(\w+)\]")
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass(frozen=True)
class Planned:
    index: int
    api: Api
    stream: bool
    shape: Shape
    fault: Fault | None

    @property
    def text(self) -> str:
        mark = f"[soak:{self.index}:{self.fault or 'none'}]"
        if self.shape == "tool":
            return f'{mark} check the weather [[tool:get_weather {{"city": "Oslo"}}]]'
        return f"{mark} request number {self.index}"

    @property
    def ending(self) -> Ending:
        return ENDINGS[self.fault]


def plan() -> list[Planned]:
    """A fixed mix: APIs, modes and shapes rotate; every tenth request carries a fault, and each fault
    meets both APIs in both modes."""
    shapes: tuple[Shape, ...] = ("text", "tool", "thinking")
    modes: tuple[tuple[Api, bool], ...] = (
        ("openai", True),
        ("anthropic", True),
        ("openai", False),
        ("anthropic", False),
    )
    requests = []
    for i in range(TOTAL):
        if i % 10 == 7:
            n = i // 10
            fault: Fault | None = FAULTS[n % len(FAULTS)]
            api, stream = modes[(n // len(FAULTS)) % len(modes)]
        else:
            fault = None
            api, stream = modes[i % len(modes)]
        requests.append(Planned(i, api, stream, shapes[(i // 4) % 3], fault))
    return requests


class Responder:
    """The fake's answer to a request, chosen by the fault its text names. Runs on the server loop."""

    def __init__(self) -> None:
        self.attempts: Counter[int] = Counter()

    def __call__(self, body: Mapping[str, Any]) -> Reply:
        found = MARK.search(json.dumps(body.get("conversationState", {})))
        if found is None:
            return smart_reply(body)
        index, fault = int(found.group(1)), found.group(2)
        self.attempts[index] += 1
        # after a first byte: the stream has begun when the fault strikes
        begun: list[Any] = [Text("so far so good"), Delay(0.02)]
        match fault:
            case "disconnect":
                return Reply([*begun, Disconnect()])
            case "corrupt":
                return Reply([*begun, Corrupt()])
            case "exception":
                return Reply([*begun, ExceptionFrame("InternalServerException", "kaput")])
            case "throttle":
                return throttle_reply()
            case "flaky" if self.attempts[index] == 1:
                return error_reply(500, "Internal")
            case _:
                return smart_reply(body)


# ---- the clients ----------------------------------------------------------------------------------


async def openai_call(client: openai.AsyncOpenAI, p: Planned) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": p.text}]}
    if p.fault == "invalid":
        kwargs["messages"] = [{"role": "robot", "content": p.text}]
    if p.shape == "tool":
        kwargs["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": WEATHER["name"],
                    "description": WEATHER["description"],
                    "parameters": WEATHER["input_schema"],
                },
            }
        ]
    if p.shape == "thinking":
        kwargs["reasoning_effort"] = "low"
    if p.stream:
        finish, text, reasoning, calls = None, "", "", []
        async for chunk in await client.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                text += choice.delta.content or ""
                reasoning += getattr(choice.delta, "reasoning_content", None) or ""
                calls += [
                    c.function.name for c in choice.delta.tool_calls or [] if c.function and c.function.name
                ]
    else:
        reply = await client.chat.completions.create(**kwargs)
        choice = reply.choices[0]
        finish, text = choice.finish_reason, choice.message.content or ""
        reasoning = getattr(choice.message, "reasoning_content", None) or ""
        calls = [c.function.name for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
    if p.shape == "tool":
        assert finish == "tool_calls" and calls == ["get_weather"], (finish, calls)
    else:
        assert finish == "stop" and f"request number {p.index}" in text, (finish, text)
    assert bool(reasoning) == (p.shape == "thinking"), reasoning


async def anthropic_call(client: anthropic.AsyncAnthropic, p: Planned) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": p.text}],
    }
    if p.fault == "invalid":
        kwargs["messages"] = [{"role": "robot", "content": p.text}]
    if p.shape == "tool":
        kwargs["tools"] = [WEATHER]
    if p.shape == "thinking":
        kwargs["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    if p.stream:
        async with client.messages.stream(**kwargs) as stream:
            message = await stream.get_final_message()
    else:
        message = await client.messages.create(**kwargs)
    kinds = [block.type for block in message.content]
    if p.shape == "tool":
        assert message.stop_reason == "tool_use" and kinds[-1] == "tool_use", (message.stop_reason, kinds)
    else:
        said = "".join(b.text for b in message.content if b.type == "text")
        assert message.stop_reason == "end_turn" and f"request number {p.index}" in said, said
    assert ("thinking" in kinds) == (p.shape == "thinking"), kinds


async def run_one(
    p: Planned, oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic, gate: asyncio.Semaphore
) -> Ending:
    """The request's actual ending, from what the SDK raised (or did not)."""
    async with gate:
        try:
            if p.api == "openai":
                await openai_call(oa, p)
            else:
                await anthropic_call(an, p)
        except (openai.BadRequestError, anthropic.BadRequestError) as exc:
            assert exc.status_code == 400 and "role" in exc.message
            return "invalid"
        except (openai.RateLimitError, anthropic.RateLimitError) as exc:
            assert exc.response.headers.get("retry-after")
            return "throttled"
        except (openai.InternalServerError, anthropic.InternalServerError) as exc:
            assert exc.status_code == 502 and not p.stream, exc
            return "upstream"
        except (openai.APIError, anthropic.APIError) as exc:  # an error event inside a begun stream
            assert p.stream and re.search("broke|corrupt|kaput", str(exc)), exc
            return "upstream"
        return "ok"


async def soak(gw: Gateway, requests: list[Planned]) -> list[Ending]:
    gate = asyncio.Semaphore(CONCURRENCY)
    oa, an = gw.async_openai(), gw.async_anthropic()
    try:
        return await asyncio.gather(*(run_one(p, oa, an, gate) for p in requests))
    finally:
        await oa.close()
        await an.close()


@ALLOW_RETRIES
@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_soak_500_mixed_requests_with_ten_percent_faults(gateway: Gateway) -> None:
    responder = Responder()
    gateway.thread.call(setattr, gateway.fake, "responder", responder)
    await soak(
        gateway, [Planned(-1, "openai", True, "text", None), Planned(-2, "anthropic", False, "text", None)]
    )
    baseline = await asyncio.to_thread(settled_resources, gateway)
    loop_errors = LoopErrors(gateway)
    metrics_before = gateway.service.metrics.snapshot()

    requests = plan()
    endings = await soak(gateway, requests)

    assert endings == [p.ending for p in requests]  # every request ended exactly as planned
    assert all(responder.attempts[p.index] == 2 for p in requests if p.fault == "flaky")
    assert all(responder.attempts[p.index] == 3 for p in requests if p.fault == "throttle")
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(gateway.url + "/metrics", headers={"x-api-key": gateway.key})).json()

    def added(name: str) -> dict[str, int]:
        before = metrics_before[name]
        return {k: v - before.get(k, 0) for k, v in metrics[name].items() if v != before.get(k, 0)}

    failed_streams = sum(1 for p in requests if p.ending == "upstream" and p.stream)
    failed_calls = sum(1 for p in requests if p.ending == "upstream" and not p.stream)
    throttled = sum(1 for p in requests if p.ending == "throttled")
    invalid = sum(1 for p in requests if p.ending == "invalid")
    ok = sum(1 for p in requests if p.ending == "ok")
    assert metrics["requests_total"] - metrics_before["requests_total"] == TOTAL
    assert added("requests_by_status") == {
        "200": ok + failed_streams,  # a stream that failed after its first byte was a 200
        "502": failed_calls,
        "429": throttled,
        "400": invalid,
    }
    assert added("errors_by_kind") == {
        "upstream": failed_streams + failed_calls,
        "throttled": throttled,
        "invalid_request": invalid,
    }
    by_api = Counter(p.api for p in requests)
    assert added("requests_by_endpoint") == {
        "/v1/chat/completions": by_api["openai"],
        "/v1/messages": by_api["anthropic"],
    }
    assert metrics["in_flight"] == 0 and metrics["active_streams"] == 0
    await asyncio.to_thread(assert_no_leaks, gateway, baseline)
    loop_errors.check()
