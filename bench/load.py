"""The load generator: streamed requests through the gateway (OpenAI or Anthropic) or straight to the fake.

Every request is checked, cheaply, for being a complete success: status 200, the end mark of the last
chunk present, and the format's normal ending (``data: [DONE]`` / ``message_stop``) with no error event.
Anything else counts as an error, with a short description kept for the report.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Literal, assert_never

import aiohttp

from kiro_tray.gateway.dialects import CHAT

from .fake import END_MARK, Shape
from .procs import ProcessFailed

Target = Literal["direct", "openai", "anthropic"]
TARGETS: tuple[Target, ...] = ("direct", "openai", "anthropic")
MODEL = "claude-sonnet-4.5"
REQUEST_TIMEOUT = 120.0
MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Sample:
    ok: bool
    first_byte: float  # seconds from sending the request to the first body byte
    total: float  # seconds to the end of the body
    events: int  # SSE data events received (0 for direct)
    writes: int  # HTTP chunks received: how many writes the server's payload took
    error: str | None = None


@dataclass
class Batch:
    """Results of many requests: counts, timings, and a few error descriptions."""

    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def error_samples(self) -> list[str]:
        seen: list[str] = []
        for sample in self.samples:
            if sample.error is not None and sample.error not in seen:
                seen.append(sample.error)
                if len(seen) == MAX_ERROR_SAMPLES:
                    break
        return seen


@dataclass(frozen=True, slots=True)
class Endpoints:
    gateway_url: str
    fake_url: str
    client_key: str = field(repr=False)
    access_token: str = field(repr=False)
    profile_arn: str | None = None


def _prompt(shape: Shape) -> str:
    return f"Benchmark request. {shape.directive} Please answer at length."


class LoadGenerator:
    """Pre-built request bodies for each target and reply shape, sent over one shared session."""

    def __init__(self, session: aiohttp.ClientSession, endpoints: Endpoints) -> None:
        self.session = session
        self.endpoints = endpoints
        self._bodies: dict[tuple[Target, Shape], bytes] = {}
        #: Responses whose first byte has arrived and whose end has not: streams open right now.
        self.streaming = 0

    def _body(self, target: Target, shape: Shape) -> bytes:
        body = self._bodies.get((target, shape))
        if body is None:
            body = self._bodies[target, shape] = json.dumps(self._request(target, shape)).encode()
        return body

    def _request(self, target: Target, shape: Shape) -> dict[str, object]:
        messages = [{"role": "user", "content": _prompt(shape)}]
        match target:
            case "openai":
                return {"model": MODEL, "stream": True, "messages": messages}
            case "anthropic":
                return {"model": MODEL, "stream": True, "max_tokens": 4096, "messages": messages}
            case "direct":
                # Exactly what the gateway would send for the OpenAI request above.
                payload = CHAT.to_kiro({"model": MODEL, "stream": True, "messages": messages}).payload
                if self.endpoints.profile_arn:
                    payload = {**payload, "profileArn": self.endpoints.profile_arn}
                return payload
            case _:
                assert_never(target)

    def _url_and_headers(self, target: Target) -> tuple[str, dict[str, str]]:
        e = self.endpoints
        json_type = {"Content-Type": "application/json"}
        match target:
            case "openai":
                return e.gateway_url + "/v1/chat/completions", {
                    **json_type,
                    "Authorization": f"Bearer {e.client_key}",
                }
            case "anthropic":
                return e.gateway_url + "/v1/messages", {
                    **json_type,
                    "x-api-key": e.client_key,
                    "anthropic-version": "2023-06-01",
                }
            case "direct":
                return e.fake_url + "/generateAssistantResponse", {
                    **json_type,
                    "Authorization": f"Bearer {e.access_token}",
                }
            case _:
                assert_never(target)

    async def one(self, target: Target, shape: Shape) -> Sample:
        url, headers = self._url_and_headers(target)
        body = self._body(target, shape)
        parts: list[bytes] = []
        writes = 0
        start = time.perf_counter()
        first = 0.0
        try:
            async with self.session.post(url, data=body, headers=headers) as resp:
                async for data, end_of_http_chunk in resp.content.iter_chunks():
                    writes += end_of_http_chunk
                    if not data:
                        continue
                    if not parts:
                        first = time.perf_counter() - start
                        self.streaming += 1
                    parts.append(data)
                total = time.perf_counter() - start
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            elapsed = time.perf_counter() - start
            error = f"{target}: {type(exc).__name__}: {exc}"[:200]
            return Sample(False, first, elapsed, 0, writes, error)
        finally:
            if parts:
                self.streaming -= 1
        content = b"".join(parts)
        problem = _problem(target, status, content)
        return Sample(problem is None, first, total, _sse_events(target, content), writes, problem)

    async def many(
        self, target: Target, shape: Shape, requests: int, concurrency: int, *, seconds: float | None = None
    ) -> Batch:
        """``requests`` requests with ``concurrency`` in flight at all times (fewer when ``seconds`` end)."""
        batch = Batch()
        remaining = requests
        deadline = time.perf_counter() + (seconds if seconds is not None else REQUEST_TIMEOUT * requests)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                batch.samples.append(await self.one(target, shape))

        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, requests)):
                group.create_task(worker())
        batch.seconds = time.perf_counter() - start
        return batch

    async def interleaved(
        self, targets: tuple[Target, ...], shape: Shape, rounds: int
    ) -> dict[Target, Batch]:
        """One request at a time, cycling through the targets so drift hits all of them alike. The order
        rotates every round: a target that always followed the same one would inherit its tail (the fake
        still finishing the previous stream on the shared cores) and look slower than it is."""
        batches: dict[Target, Batch] = {t: Batch() for t in targets}
        for round_number in range(rounds):
            shift = round_number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                batches[target].samples.append(await self.one(target, shape))
        return batches


def _sse_events(target: Target, content: bytes) -> int:
    if target == "direct":
        return 0
    return content.count(b"\ndata: ") + content.startswith(b"data: ")


def _problem(target: Target, status: int, content: bytes) -> str | None:
    """Why a response is not a complete success, or None."""
    if status != 200:
        return f"{target}: HTTP {status}: {content[:160].decode(errors='replace')}"
    if END_MARK.encode() not in content:
        return f"{target}: stream lacks its last chunk ({len(content)} bytes)"
    match target:
        case "direct":
            abnormal = False
        case "openai":
            abnormal = b'"error"' in content or not content.rstrip().endswith(b"data: [DONE]")
        case "anthropic":
            abnormal = b"event: error" in content or b"event: message_stop" not in content
        case _:
            assert_never(target)
    if abnormal:
        return f"{target}: abnormal ending: {content[-160:].decode(errors='replace')!r}"
    return None


async def fetch_access_token(
    session: aiohttp.ClientSession, fake_url: str, refresh_token: str
) -> dict[str, str]:
    """The fake's ``/refreshToken`` answer (``accessToken``, ``profileArn``) for the direct requests."""
    async with session.post(fake_url + "/refreshToken", json={"refreshToken": refresh_token}) as resp:
        answer = await resp.json()
        if resp.status != 200 or not isinstance(answer, dict):
            raise ProcessFailed(f"the fake refused the refresh token (HTTP {resp.status})")
        return {k: str(v) for k, v in answer.items() if k in ("accessToken", "profileArn")}
