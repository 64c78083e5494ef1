"""A faithful fake of the Kiro backend: a real aiohttp server on a real port speaking the real protocol.

One server plays every host: point ``KIRO_API_BASE_URL``, ``KIRO_AUTH_BASE_URL`` and
``KIRO_OIDC_BASE_URL`` at :attr:`FakeKiro.url`. Routes: ``POST /refreshToken`` and ``POST /token``
(see ``auth.py``), ``POST /generateAssistantResponse``, ``GET /ListAvailableModels``,
``GET /getUsageLimits``.

Scripting it::

    fake = FakeKiro()
    url = await fake.start()                  # port 0: a free port; close with ``await fake.close()``
    account = fake.add_account()              # a social account; hand account.refresh_token to the gateway
    fake.enqueue(text_reply("Hello!", chunks=4), tool_reply("get_weather", {"city": "Oslo"}))
    fake.enqueue(Reply([Text("partial"), Stall()]))         # steps from replies.py
    fake.enqueue(error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"))

- Replies are consumed FIFO, one per generate call that passed validation; with the queue empty,
  :attr:`FakeKiro.responder` (default :func:`replies.smart_reply`) answers from the request body.
- Every body is validated as Kiro does (``rules.py``); a violation is answered with Kiro's error body
  and does not consume a queued reply. ``fake.enforce_rules = False`` turns validation off;
  ``fake.max_payload_bytes`` sets the size rule's limit.
- ``fake.requests`` lists every API call (:class:`ReceivedRequest`: path, headers, body, query, status,
  violation); the auth endpoints are not listed (``fake.auth`` counts them).
- ``fake.models`` (the ListAvailableModels list; ``tokenLimits.maxInputTokens`` is also the context
  limit the rules enforce), ``fake.internal_model_ids``, ``fake.models_page_size`` (paginate),
  ``fake.usage`` (the getUsageLimits answer) are plain attributes to edit.
- Account flags, each Kiro's own answer (kiro-protocol.md 9.5): ``account.suspended`` -> 403
  TEMPORARILY_SUSPENDED, ``account.locked`` -> 423 (both on every API call); on generate:
  ``account.quota_exhausted`` -> 402 MONTHLY_REQUEST_COUNT, ``account.throttled`` -> 429
  USER_REQUEST_RATE_EXCEEDED (``account.retry_after`` adds Retry-After), ``account.suspicious`` -> 429
  "suspicious activity"; ``account.expire_access_tokens()`` -> 403 bearer invalid;
  ``account.expire_login()`` -> refresh answers invalid_grant. ``fake.capacity_exhausted`` -> 429
  INSUFFICIENT_MODEL_CAPACITY for every account (Kiro-wide).
- Usage: ``account.usage`` (default: ``fake.usage``, copied once metering adds to it;
  :func:`usage_answer` builds one with given numbers) answers ``GET /getUsageLimits`` (IDE flavour)
  and ``GET /Get-Usage-Limits`` (management flavour); each served ``meteringEvent`` adds its credits
  to the account's usage.
  ``fake.usage_flavours`` lists the flavours the fake serves (the other answers 404).
- Leak counters: ``open_streams`` (streamed responses in progress; ``await fake.wait_idle()`` waits
  for zero), ``total_connections`` (TCP connections ever accepted), ``open_connections`` (open now).
- A :class:`~replies.Stall` holds until the client goes away or ``close()``; ``close()`` never hangs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from .auth import Account, AuthState, bearer_error
from .replies import Delay, Disconnect, Metering, Reply, Stall, smart_reply
from .rules import IMPROPER, NOT_AUTHORIZED, RuleViolation, parse, validate

EVENTSTREAM = "application/vnd.amazon.eventstream"
SUSPENDED_MESSAGE = "Your User ID temporarily is suspended. Please contact AWS support to restore access."
LOCKED_MESSAGE = "We have locked your account. Please contact AWS support."
QUOTA_MESSAGE = "You have reached the limit for monthly requests for this account."
THROTTLED_MESSAGE = "Too many requests, please wait before trying again."
SUSPICIOUS_MESSAGE = "Due to suspicious activity, we are imposing temporary limits on this account."
CAPACITY_MESSAGE = "I am experiencing high volume of traffic, please try again shortly."
INTERNAL_MODEL_IDS = frozenset(
    {
        "CLAUDE_SONNET_4_5_20250929_V1_0",
        "CLAUDE_SONNET_4_20250514_V1_0",
        "CLAUDE_3_7_SONNET_20250219_V1_0",
        "CLAUDE_OPUS_4_5_20251101_V1_0",
        "CLAUDE_OPUS_4_6_V1_0",
        "CLAUDE_SONNET_4_6_V1_0",
    }
)


def model_entry(
    model_id: str, name: str, description: str, rate: float, max_input: int = 200_000
) -> dict[str, Any]:
    """One ListAvailableModels entry (kiro-protocol.md 2.1)."""
    return {
        "modelId": model_id,
        "modelName": name,
        "description": description,
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "rateMultiplier": rate,
        "tokenLimits": {"maxInputTokens": max_input, "maxOutputTokens": 64_000},
    }


def default_models() -> list[dict[str, Any]]:
    return [
        model_entry("auto", "Auto", "Models chosen by task for optimal usage", 1.0),
        model_entry("claude-sonnet-4.5", "Claude Sonnet 4.5", "The latest Claude Sonnet model", 1.3),
        model_entry("claude-sonnet-4", "Claude Sonnet 4", "Hybrid reasoning and coding", 1.3),
        model_entry("claude-haiku-4.5", "Claude Haiku 4.5", "Fast and economical", 0.4),
        model_entry("claude-opus-4.5", "Claude Opus 4.5", "The most capable Claude model", 2.2),
        model_entry("claude-sonnet-4.6", "Claude Sonnet 4.6", "Sonnet with a 1M window", 1.3, 1_000_000),
        model_entry("claude-opus-4.6", "Claude Opus 4.6", "Opus with a 1M window", 2.2, 1_000_000),
        model_entry("claude-opus-4.7", "Claude Opus 4.7", "Opus with a 1M window", 2.2, 1_000_000),
        model_entry("claude-opus-4.8", "Claude Opus 4.8", "Opus with a 1M window", 2.2, 1_000_000),
        model_entry("deepseek-3.2", "DeepSeek V3.2", "Open-weight model routed by Kiro", 0.25),
    ]


def default_usage(now: float | None = None) -> dict[str, Any]:
    """A plausible getUsageLimits answer: 50 credits a month, 12.34 used, reset in 12 days."""
    return usage_answer(now=now)


def usage_answer(
    used: float = 12.34,
    limit: float = 50.0,
    *,
    days_to_reset: int = 12,
    plan: str = "KIRO FREE",
    bonus: float = 0.0,
    now: float | None = None,
) -> dict[str, Any]:
    """A getUsageLimits answer (kiro-protocol.md 9.3) with these numbers; ``bonus`` adds a bonus grant."""
    reset = (time.time() if now is None else now) + days_to_reset * 86_400
    bonuses = (
        [{"bonusCode": "WELCOME", "currentUsage": 0.0, "usageLimit": bonus, "status": "ACTIVE"}]
        if bonus
        else []
    )
    return {
        "daysUntilReset": days_to_reset,
        "nextDateReset": round(reset, 3),
        "subscriptionInfo": {"subscriptionTitle": plan, "type": "Q_DEVELOPER_STANDALONE_FREE"},
        "usageBreakdownList": [
            {
                "resourceType": "CREDIT",
                "displayName": "Credit",
                "displayNamePlural": "Credits",
                "unit": "INVOCATIONS",
                "currency": "USD",
                "currentUsage": int(used),
                "currentUsageWithPrecision": used,
                "usageLimit": int(limit),
                "usageLimitWithPrecision": limit,
                "nextDateReset": round(reset, 3),
                "bonuses": bonuses,
            }
        ],
        "userInfo": {"email": "demo@example.com", "userId": "fake-user-0001"},
    }


@dataclass
class ReceivedRequest:
    """One API call as the fake saw it (``body`` is the parsed JSON; ``{}`` for GETs and non-JSON)."""

    path: str
    headers: CIMultiDict[str]  # case-insensitive: ``headers["authorization"]`` works
    body: dict[str, Any]
    query: dict[str, str]
    status: int = 0
    violation: RuleViolation | None = None


class _CountingSite(web.BaseSite):
    """A TCP site that counts the connections it accepts."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, on_accept: Callable[[], None]) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._on_accept = on_accept
        self.bound_port = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.BaseProtocol:
            self._on_accept()
            return server()

        self._server = await asyncio.get_running_loop().create_server(protocol, self._host, self._port)
        self.bound_port = self._server.sockets[0].getsockname()[1]


class FakeKiro:
    def __init__(self) -> None:
        self.auth = AuthState()
        self.models: list[dict[str, Any]] = default_models()
        self.internal_model_ids: set[str] = set(INTERNAL_MODEL_IDS)
        self.models_page_size: int | None = None
        self.usage: dict[str, Any] = default_usage()
        self.usage_flavours: set[str] = {"ide", "management"}
        self.capacity_exhausted = False
        self.enforce_rules = True
        self.max_payload_bytes = 615_000
        self.responder: Callable[[dict[str, Any]], Reply] = smart_reply
        self.requests: list[ReceivedRequest] = []
        #: Benchmarks turn this off so a long run does not keep every request body in memory.
        self.record_requests = True
        self.open_streams = 0
        self.total_connections = 0
        self.url = ""
        self._queue: deque[Reply] = deque()
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/refreshToken", self.auth.handle_refresh_token)
        self.app.router.add_post("/token", self.auth.handle_oidc_token)
        self.app.router.add_post("/generateAssistantResponse", self.handle_generate)
        self.app.router.add_get("/ListAvailableModels", self.handle_list_models)
        self.app.router.add_get("/getUsageLimits", self.handle_usage_limits)
        self.app.router.add_get("/Get-Usage-Limits", self.handle_management_usage)
        self._runner: web.AppRunner | None = None

    # ---- scripting --------------------------------------------------------------------------------

    def add_account(self, refresh_token: str | None = None, **kwargs: object) -> Account:
        return self.auth.add_account(refresh_token, **kwargs)

    def usage_of(self, account: Account) -> dict[str, Any]:
        """The account's usage answer: its own, or the shared ``usage`` until metering gives it one; the
        ``userInfo`` always names the account's own user."""
        answer = self.usage if account.usage is None else account.usage
        user = {"email": f"{account.user_id}@example.com", "userId": account.user_id}
        return {**answer, "userInfo": user}

    def _meter(self, account: Account, reply: Reply) -> None:
        credits = sum(step.usage for step in reply.steps if isinstance(step, Metering))
        if not credits:
            return
        if account.usage is None:
            account.usage = json.loads(json.dumps(self.usage))
        for item in account.usage.get("usageBreakdownList", []):
            if item.get("resourceType") == "CREDIT":
                used = float(item.get("currentUsageWithPrecision") or 0) + credits
                item["currentUsageWithPrecision"] = round(used, 6)
                item["currentUsage"] = int(used)

    def enqueue(self, *replies: Reply) -> None:
        """Replies for the next generate calls, in order (then the responder takes over)."""
        self._queue.extend(replies)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def wait_idle(self) -> None:
        """Return once no stream is being written (e.g. after a client walked away from one)."""
        await self._idle.wait()

    @property
    def open_connections(self) -> int:
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._closing.clear()
        # handler_cancellation: a client going away cancels its handler, which ends stalls and delays.
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = _CountingSite(self._runner, host, port, self._count_connection)
        await site.start()
        self.url = f"http://{host}:{site.bound_port}"
        return self.url

    async def close(self) -> None:
        self._closing.set()  # stalled streams drop their connections
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def _count_connection(self) -> None:
        self.total_connections += 1

    # ---- shared checks ----------------------------------------------------------------------------

    def _record(self, request: web.Request, body: dict[str, Any]) -> ReceivedRequest:
        received = ReceivedRequest(request.path, CIMultiDict(request.headers), body, dict(request.query))
        if self.record_requests:
            self.requests.append(received)
        return received

    def _authorize(self, request: web.Request) -> Account | web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        account, valid = self.auth.account_for_access_token(token)
        if account is None or not valid:
            return bearer_error()
        if account.suspended:
            body = {"message": SUSPENDED_MESSAGE, "reason": "TEMPORARILY_SUSPENDED"}
            return web.json_response(body, status=403)
        if account.locked:
            return web.json_response({"message": LOCKED_MESSAGE, "reason": "ACCOUNT_LOCKED"}, status=423)
        return account

    @staticmethod
    def _arn_mismatch(account: Account, arn: str | None) -> web.Response | None:
        if account.kind == "social" and arn is not None and arn != account.profile_arn:
            return web.json_response({"message": NOT_AUTHORIZED, "reason": None}, status=403)
        return None

    @staticmethod
    def _answer(received: ReceivedRequest, response: web.Response) -> web.Response:
        received.status = response.status
        return response

    # ---- generateAssistantResponse ----------------------------------------------------------------

    async def handle_generate(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parsed = parse(raw)
        received = self._record(request, parsed if isinstance(parsed, dict) else {})
        account = self._authorize(request)
        if isinstance(account, web.Response):
            return self._answer(received, account)
        account.generate_calls += 1
        refused = self._account_signal(account)
        if refused is not None:
            return self._answer(received, refused)
        if self.enforce_rules:
            violation = (
                parsed
                if isinstance(parsed, RuleViolation)
                else validate(
                    parsed,
                    self.models,
                    internal_model_ids=frozenset(self.internal_model_ids),
                    expected_arn=account.profile_arn if account.kind == "social" else None,
                    max_payload_bytes=self.max_payload_bytes,
                    raw_size=len(raw),
                )
            )
            if violation is not None:
                received.violation = violation
                return self._answer(received, web.json_response(violation.body, status=violation.status))
        reply = self._queue.popleft() if self._queue else self.responder(received.body)
        if reply.status == 200:
            self._meter(account, reply)
        if reply.status != 200:
            error = reply.error_body if reply.error_body is not None else {"message": "", "reason": None}
            return self._answer(
                received, web.json_response(error, status=reply.status, headers=reply.headers)
            )
        received.status = 200
        return await self._stream(request, reply)

    def _account_signal(self, account: Account) -> web.Response | None:
        """Kiro's answer when the account (or Kiro as a whole) cannot take a request now."""
        if account.quota_exhausted:
            quota = {"message": QUOTA_MESSAGE, "reason": "MONTHLY_REQUEST_COUNT"}
            return web.json_response(quota, status=402)
        if account.suspicious:
            return web.json_response({"message": SUSPICIOUS_MESSAGE, "reason": None}, status=429)
        if account.throttled:
            headers = {"Retry-After": f"{account.retry_after:g}"} if account.retry_after is not None else {}
            body = {"message": THROTTLED_MESSAGE, "reason": "USER_REQUEST_RATE_EXCEEDED"}
            return web.json_response(body, status=429, headers=headers)
        if self.capacity_exhausted:
            body = {"message": CAPACITY_MESSAGE, "reason": "INSUFFICIENT_MODEL_CAPACITY"}
            return web.json_response(body, status=429)
        return None

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": EVENTSTREAM, **reply.headers})
        self.open_streams += 1
        self._idle.clear()
        try:
            for action in reply.plan():
                if isinstance(action, Delay):
                    await self._pause(request, action.seconds)
                    continue
                if not response.prepared:
                    await response.prepare(request)
                if isinstance(action, bytes):
                    await response.write(action)
                elif isinstance(action, Stall):
                    await self._closing.wait()
                    await self._drop(request)
                elif isinstance(action, Disconnect):
                    await self._drop(request)
            if not response.prepared:
                await response.prepare(request)
            await response.write_eof()
            return response
        finally:
            self.open_streams -= 1
            if not self.open_streams:
                self._idle.set()

    async def _pause(self, request: web.Request, seconds: float) -> None:
        """Sleep, unless the fake is closing: then the connection is dropped at once."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return
        await self._drop(request)

    async def _drop(self, request: web.Request) -> None:
        """Abort the connection; the handler is then cancelled (handler_cancellation) and never returns."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        await asyncio.Future()  # cancelled by aiohttp once the connection is gone

    # ---- ListAvailableModels and getUsageLimits ---------------------------------------------------

    async def handle_list_models(self, request: web.Request) -> web.Response:
        received = self._record(request, {})
        account = self._authorize(request)
        if isinstance(account, web.Response):
            return self._answer(received, account)
        query = request.query
        refused = self._arn_mismatch(account, query.get("profileArn"))
        if refused is not None:
            return self._answer(received, refused)
        token = query.get("nextToken", "0")
        if query.get("origin") is None or not token.isdigit() or int(token) > len(self.models):
            bad = web.json_response({"message": IMPROPER, "reason": None}, status=400)
            return self._answer(received, bad)
        start = int(token)
        size = self.models_page_size or len(self.models) or 1
        answer: dict[str, Any] = {"models": self.models[start : start + size]}
        if start + size < len(self.models):
            answer["nextToken"] = str(start + size)
        return self._answer(received, web.json_response(answer))

    async def handle_usage_limits(self, request: web.Request) -> web.Response:
        return self._usage(request, "ide")

    async def handle_management_usage(self, request: web.Request) -> web.Response:
        return self._usage(request, "management")

    def _usage(self, request: web.Request, flavour: str) -> web.Response:
        received = self._record(request, {})
        if flavour not in self.usage_flavours:
            return self._answer(received, web.json_response({"message": "Not Found"}, status=404))
        account = self._authorize(request)
        if isinstance(account, web.Response):
            return self._answer(received, account)
        refused = self._arn_mismatch(account, request.query.get("profileArn"))
        if refused is not None:
            return self._answer(received, refused)
        return self._answer(received, web.json_response(self.usage_of(account)))
