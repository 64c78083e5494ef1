"""KiroClient: sends requests to Kiro with IDE-style headers, retries before the first byte, and timeouts.

``open_stream`` returns only once Kiro's first body chunk is in hand, so every failure before that point
(HTTP errors, network errors, the first-token timeout) is retried or mapped to a
:mod:`kiro_tray.protocol.errors` class while the gateway can still answer with a real status code
(kiro-protocol.md 4). After the first byte nothing is retried: the caller owns the stream.

Proxies: the caller creates the ``ClientSession`` with ``trust_env=True`` so ``HTTPS_PROXY`` /
``NO_PROXY`` are honoured; this module never reads the environment.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import socket
import ssl
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import aiohttp

from ..protocol.errors import (
    AccountSuspended,
    CapacityExhausted,
    ContextTooLong,
    CredentialsError,
    GatewayError,
    ImproperlyFormed,
    InvalidModel,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
    copy_with_message,
)
from ..protocol.eventstream import EventStreamError
from ..protocol.jsonsafe import clip
from ..protocol.kiro_events import KiroEvent, KiroEventDecoder
from . import signals
from .credentials import Credential
from .signals import UpstreamSignal
from .token_manager import KIRO_VERSION, SDK_VERSION, TokenManager

log = logging.getLogger("kiro_tray.upstream.client")

T = TypeVar("T")

#: Well-known placeholder ARNs that Kiro often answers with 403 "not authorized" (kiro-protocol.md 1.4).
PLACEHOLDER_PROFILE_ARNS = frozenset(
    {
        "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX",
        "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
    }
)
NODE_VERSION = "22.22.0"
OS_TAG = {"darwin": "darwin#24.6.0", "win32": "win32#10.0.22631"}.get(sys.platform, "linux#6.8.0")
CONNECT_TIMEOUT = 30.0
MAX_MODEL_PAGES = 20
DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ClientConfig:
    api_base_url: str  # e.g. https://q.us-east-1.amazonaws.com (region substituted)
    first_token_timeout: float = 120.0
    stream_read_timeout: float = 300.0
    non_stream_timeout: float = 900.0
    max_retries: int = 3
    slow_model_multiplier: float = 3.0
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    request_timeout: float = 60.0  # ListAvailableModels / getUsageLimits
    #: The management host's usage flavour (kiro-protocol.md 9.3); None: the IDE flavour only.
    management_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamRetried:
    """Attempt ``attempt`` (1-based) failed with ``cause`` (``HTTP 429``, ``connection refused``,
    ``first-token timeout``, ...); the next one starts after ``delay`` seconds."""

    cause: str
    attempt: int
    delay: float
    kind: Literal["retried"] = "retried"


ClientEvent = UpstreamRetried
UsageFlavour = Literal["ide", "management"]

#: Hears the classification of the failure that ended a call (see :mod:`kiro_tray.upstream.signals`).
Classified = Callable[[UpstreamSignal], None]


@dataclass(frozen=True, slots=True)
class _Failure:
    action: signals.Action
    cause: str
    error: GatewayError
    retry_after: float | None = None
    signal: UpstreamSignal | None = None


@dataclass(frozen=True, slots=True)
class _Budget:
    """The timeouts of one call (already scaled for slow models)."""

    first_token: float
    read: float
    total: float
    deadline: float | None  # loop time by which a non-streamed answer must be complete

    def cap(self, timeout: float, label: str) -> tuple[float, str, bool]:
        """``(seconds, label, is_deadline)``: ``timeout`` or what is left of the total deadline."""
        if self.deadline is not None:
            left = self.deadline - asyncio.get_running_loop().time()
            if left <= timeout:
                return max(left, 0.0), f"non-streaming timeout ({self.total:g} s)", True
        return timeout, f"{label} ({timeout:g} s)", False


#: What can go wrong reading Kiro's answer once it has begun: the network, a silence, a corrupt frame.
_READ_FAILURES = (aiohttp.ClientError, TimeoutError, EventStreamError)
_CUT_MID_FRAME = "Kiro's stream ended in the middle of an event frame (connection cut)."


def _read_failure(exc: BaseException, label: str) -> GatewayError:
    """Each of :data:`_READ_FAILURES` as the gateway error it is, mapped in this one place (as httpx maps
    transport errors at one boundary)."""
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"The connection to Kiro broke mid-stream ({_network_cause(exc)}).")
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"Kiro went silent mid-answer: nothing arrived within the {label}.")
    return UpstreamError(f"Kiro sent a corrupt event stream: {exc}.")


class UpstreamStream:
    """Kiro's answer as typed events, one list per network chunk, the first chunk already in hand.

    Iterating yields the events each chunk completes; decoding happens here, and a broken connection, a
    silence past the read timeout, a corrupt frame or an answer cut inside a frame raise one
    :class:`~kiro_tray.protocol.errors.GatewayError` each. Use as an async context manager: the upstream
    response is always released (or closed, when abandoned half-way), so no connection leaks."""

    def __init__(self, response: aiohttp.ClientResponse, first_chunk: bytes, budget: _Budget) -> None:
        self._response = response
        self._budget = budget
        self._closed = False
        self._first: bytes | None = first_chunk
        self._decoder = KiroEventDecoder()
        self.retries = 0
        self.status = response.status

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[KiroEvent]:
        chunk, self._first = self._first, None
        label = "stream read timeout"
        try:
            if chunk is None:
                if self._closed:
                    raise StopAsyncIteration
                timeout, label, _ = self._budget.cap(self._budget.read, label)
                async with asyncio.timeout(timeout):
                    chunk = await self._response.content.readany()
            if not chunk:
                await self.aclose()
                if self._decoder.pending:
                    raise UpstreamError(_CUT_MID_FRAME)
                raise StopAsyncIteration
            return self._decoder.feed(chunk)
        except _READ_FAILURES as exc:
            await self.aclose()
            raise _read_failure(exc, label) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response.content.at_eof():
            self._response.release()  # complete: the connection goes back to the pool
        else:
            self._response.close()  # abandoned half-way: the connection cannot be reused


class KiroClient:
    """Talks to ``generateAssistantResponse``, ``ListAvailableModels`` and ``getUsageLimits``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: ClientConfig,
        on_event: Callable[[ClientEvent], None] | None = None,
    ) -> None:
        self._session = session
        #: Replaceable at run time (settings changes); each call reads it once at its start.
        self.config = config
        self._on_event = on_event

    @property
    def _base(self) -> str:
        return self.config.api_base_url.rstrip("/")

    async def open_stream(
        self,
        payload: dict[str, Any],
        tokens: TokenManager,
        *,
        model: str,
        stream: bool,
        retried: Callable[[UpstreamRetried], None] | None = None,
        classified: Classified | None = None,
        failover: bool = False,
    ) -> UpstreamStream:
        """Send a chat request; returns once the first body chunk arrived (see the module docstring).
        ``retried`` hears of every retry of this call, the ones before a final failure included;
        ``classified`` hears the signal of the failure that ends it. With ``failover`` (another account
        could take the request over) an account fault ends the call at once instead of being retried on
        this account."""
        budget = self._budget(model, stream=stream)

        async def attempt(credential: Credential, arn: str | None, number: int) -> UpstreamStream | _Failure:
            body = {k: v for k, v in payload.items() if k != "profileArn"}
            if arn is not None:
                body["profileArn"] = arn
            # A lone surrogate (valid JSON escape, invalid Unicode) must not crash the encode.
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
            headers = self._headers(credential, tokens.machine_id, number)
            return await self._send(data, headers, budget, model)

        upstream, retries = await self._run(tokens, attempt, budget, retried, classified, failover)
        upstream.retries = retries
        return upstream

    async def list_models(self, tokens: TokenManager) -> list[dict[str, Any]]:
        """All pages of ``ListAvailableModels`` for the account."""
        models: list[dict[str, Any]] = []
        next_token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params = {"origin": "AI_EDITOR"}
            if next_token:
                params["nextToken"] = next_token
            page = await self._get_json("/ListAvailableModels", params, tokens)
            found = page.get("models")
            if isinstance(found, list):
                models.extend(m for m in found if isinstance(m, dict))
            token = page.get("nextToken")
            if not isinstance(token, str) or not token or token == next_token:
                break
            next_token = token
        return models

    async def usage_limits(
        self, tokens: TokenManager, flavour: UsageFlavour = "ide", classified: Classified | None = None
    ) -> dict[str, Any]:
        """The account's usage limits (credits, plan, reset date), in one of the two flavours of
        kiro-protocol.md 9.3: ``ide`` (``GET {api}/getUsageLimits``) or ``management``
        (``GET {management}/Get-Usage-Limits``)."""
        if flavour == "management" and self.config.management_base_url:
            params = {"origin": "KIRO_CLI", "resourceType": "CREDIT", "isEmailRequired": "false"}
            base = self.config.management_base_url.rstrip("/")
            return await self._get_json("/Get-Usage-Limits", params, tokens, base, classified)
        params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST", "isEmailRequired": "true"}
        return await self._get_json("/getUsageLimits", params, tokens, classified=classified)

    # ---- one attempt -----------------------------------------------------------------------------

    async def _send(
        self, data: bytes, headers: dict[str, str], budget: _Budget, model: str
    ) -> UpstreamStream | _Failure:
        timeout, label, is_deadline = budget.cap(budget.first_token, "first-token timeout")
        response: aiohttp.ClientResponse | None = None
        try:
            # One budget from sending to the first body byte: the wait for headers and for the first
            # chunk after them are both "time to first token" as the user sees it.
            async with asyncio.timeout(timeout):
                response = await self._session.post(
                    f"{self._base}/generateAssistantResponse",
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT),
                )
                if response.status != 200:
                    text = await response.text(errors="replace")
                    response.release()
                    return _classify(response.status, text, response.headers, model)
                first = await response.content.readany()
        except aiohttp.ClientError as exc:
            if response is not None:
                response.close()
            return _network_failure(exc)
        except TimeoutError:
            if response is not None:
                response.close()
            error = UpstreamTimeout(f"Kiro did not start answering within the {label}.")
            return _Failure("fail" if is_deadline else "retry", "first-token timeout", error)
        except BaseException:
            if response is not None:
                response.close()
            raise
        return UpstreamStream(response, first, budget)

    async def _get_json(
        self,
        path: str,
        params: dict[str, str],
        tokens: TokenManager,
        base: str | None = None,
        classified: Classified | None = None,
    ) -> dict[str, Any]:
        url = f"{base or self._base}{path}"
        budget = _Budget(self.config.request_timeout, self.config.request_timeout, 0.0, None)

        async def attempt(credential: Credential, arn: str | None, number: int) -> dict[str, Any] | _Failure:
            query = {**params, "profileArn": arn} if arn is not None else params
            headers = self._headers(credential, tokens.machine_id, number)
            try:
                async with (
                    asyncio.timeout(budget.first_token),
                    self._session.get(url, params=query, headers=headers) as response,
                ):
                    text = await response.text(errors="replace")
                    if response.status != 200:
                        return _classify(response.status, text, response.headers, "")
            except aiohttp.ClientError as exc:
                return _network_failure(exc)
            except TimeoutError:
                error = UpstreamTimeout(f"Kiro did not answer {path} within {budget.first_token:g} s.")
                return _Failure("retry", "timeout", error)
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                return _Failure(
                    "fail", "bad answer", UpstreamError(f"Kiro's {path} answer was not a JSON object.")
                )
            return answer

        answer, _ = await self._run(tokens, attempt, budget, classified=classified)
        return answer

    # ---- the retry loop --------------------------------------------------------------------------

    async def _run(
        self,
        tokens: TokenManager,
        attempt: Callable[[Credential, str | None, int], Awaitable[T | _Failure]],
        budget: _Budget,
        retried: Callable[[UpstreamRetried], None] | None = None,
        classified: Classified | None = None,
        failover: bool = False,
    ) -> tuple[T, int]:
        """Run ``attempt`` until it succeeds or its failure is final; returns ``(result, retries)``.

        Backoff retries (429/408/5xx/network/first-token timeout) count against ``max_retries``; the one
        forced token refresh and the one retry without the profile ARN are extra."""
        retries = backoffs = 0
        refreshed = arn_dropped = False
        while True:
            credential = await _token(tokens.get_token(), classified)
            arn = None if arn_dropped else profile_arn_for(credential)
            number = retries + 1
            log.debug("Kiro attempt %d%s", number, "" if arn else " (no profile ARN)")
            outcome = await attempt(credential, arn, number)
            if not isinstance(outcome, _Failure):
                return outcome, retries
            delay = 0.0
            if outcome.action == "refresh" and not refreshed and credential.access_token:
                refreshed = True
                await _token(tokens.force_refresh(credential.access_token), classified)
            elif outcome.action == "drop_arn" and arn is not None and not arn_dropped:
                arn_dropped = True
            elif (
                outcome.action == "retry"
                and backoffs < self.config.max_retries
                and not (failover and outcome.signal is not None and outcome.signal.failover)
            ):
                wait = self._delay(backoffs, outcome.retry_after)
                if wait is None or _past_deadline(budget, wait):
                    raise _final(outcome, number, classified)
                delay = wait
                backoffs += 1
            else:
                raise _final(outcome, number, classified)
            retries += 1
            log.info("Kiro attempt %d failed (%s); retrying in %.2f s", number, outcome.cause, delay)
            event = UpstreamRetried(outcome.cause, number, delay)
            for listener in (self._on_event, retried):
                if listener is not None:
                    listener(event)
            if delay:
                await asyncio.sleep(delay)

    def _delay(self, backoffs: int, retry_after: float | None) -> float | None:
        """Jittered exponential backoff, at least ``Retry-After``; None when Kiro asks for a longer wait
        than ``backoff_cap`` (the client gets the 429 and its Retry-After instead)."""
        config = self.config
        if retry_after is not None and retry_after > config.backoff_cap:
            return None
        backoff = min(config.backoff_cap, config.backoff_base * 2.0**backoffs) * random.uniform(0.5, 1.0)
        return max(backoff, retry_after or 0.0)

    def _budget(self, model: str, *, stream: bool) -> _Budget:
        config = self.config
        scale = config.slow_model_multiplier if "opus" in model.lower() else 1.0
        total = config.non_stream_timeout * scale
        deadline = None if stream else asyncio.get_running_loop().time() + total
        return _Budget(
            config.first_token_timeout * scale, config.stream_read_timeout * scale, total, deadline
        )

    def _headers(self, credential: Credential, machine_id: str, attempt: int) -> dict[str, str]:
        # No "Connection: close": peers added it to stop CLOSE_WAIT leaks from responses they never
        # closed. UpstreamStream always releases or closes its response, so keep-alive is safe and saves
        # a TCP + TLS handshake per request.
        ide = f"KiroIDE-{KIRO_VERSION}-{machine_id}"
        headers = {
            "Authorization": f"Bearer {credential.access_token}",
            "Content-Type": "application/json",
            "user-agent": f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/{OS_TAG} lang/js md/nodejs#{NODE_VERSION} "
            f"api/codewhispererstreaming#{SDK_VERSION} m/E {ide}",
            "x-amz-user-agent": f"aws-sdk-js/{SDK_VERSION} {ide}",
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            # the forced refresh and the ARN-less retry are extra attempts beyond max_retries + 1
            "amz-sdk-request": f"attempt={attempt}; max={max(attempt, self.config.max_retries + 1)}",
        }
        if credential.auth_kind == "api_key":
            headers["tokentype"] = "API_KEY"
        return headers


def profile_arn_for(credential: Credential) -> str | None:
    """The ARN to send (kiro-protocol.md 1.4): social logins' real ARN; never for Builder ID / Identity
    Center (it causes 403s) nor for the two placeholder ARNs."""
    arn = credential.profile_arn
    if credential.auth_kind != "social" or not arn or arn in PLACEHOLDER_PROFILE_ARNS:
        return None
    return arn


def _past_deadline(budget: _Budget, delay: float) -> bool:
    return budget.deadline is not None and asyncio.get_running_loop().time() + delay >= budget.deadline


async def _token(getting: Awaitable[Credential], classified: Classified | None) -> Credential:
    """A token from the manager; a login it cannot renew is the ``login_revoked`` signal."""
    try:
        return await getting
    except CredentialsError:
        if classified is not None:
            classified(signals.LOGIN_REVOKED)
        raise


def _final(failure: _Failure, attempts: int, classified: Classified | None = None) -> GatewayError:
    if classified is not None and failure.signal is not None:
        classified(failure.signal)
    if failure.action != "retry" or attempts == 1:
        return failure.error
    error = failure.error
    return copy_with_message(error, f"{error.message.removesuffix('.')} (after {attempts} attempts).")


def _kiro_message(text: str) -> tuple[str, str | None]:
    """``(message, reason)`` from Kiro's ``{"message", "reason"}`` error body."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return text.strip()[:DETAIL_LIMIT], None
    message = body.get("message") or body.get("Message") or ""
    reason = body.get("reason")
    return str(message)[:DETAIL_LIMIT], reason if isinstance(reason, str) and reason else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _classify(status: int, text: str, headers: Mapping[str, str], model: str) -> _Failure:
    """Map a non-200 answer to its row of :data:`~kiro_tray.upstream.signals.SIGNALS` and the error to
    raise if it is final (kiro-protocol.md 4.1, 9.5)."""
    message, reason = _kiro_message(text)
    signal = signals.classify(status, reason, message)
    detail = message.rstrip(".") or f"HTTP {status}"
    if reason:
        detail += f" (reason: {reason})"
    cause = f"HTTP {status}"
    retry_after = _retry_after(headers)
    error: GatewayError
    if signal is signals.QUOTA:
        error = QuotaExhausted(f"The monthly Kiro quota is used up: {detail}.")
    elif signal is signals.CAPACITY:
        error = CapacityExhausted(f"Kiro has no capacity for this model right now: {detail}.")
    elif signal is signals.RISK:
        retry_after = max(retry_after or 0.0, signal.cooldown)
        error = RateLimited(
            f"Kiro limits this account for suspicious activity: {detail}.", retry_after=retry_after
        )
    elif signal is signals.THROTTLED:
        error = RateLimited(f"Kiro is throttling requests: {detail}.", retry_after=retry_after)
    elif signal is signals.SUSPENDED:
        error = AccountSuspended(f"Kiro suspended this account: {detail}.")
    elif signal is signals.BEARER_INVALID:
        cause = "bearer token invalid"
        error = CredentialsError("Kiro rejected the access token even after a refresh: log in to Kiro again.")
    elif signal is signals.NOT_AUTHORIZED:
        cause = "not authorized"
        error = CredentialsError(f"Kiro says this login may not make the call: {detail}.")
    elif signal is signals.LOGIN_REFUSED:
        error = CredentialsError(f"Kiro refused the login (HTTP {status}): {detail}.")
    elif status == 400:
        error = _bad_request(signal, reason, detail, model)
    elif status == 408:
        error = UpstreamTimeout(f"Kiro timed the request out (HTTP 408): {detail}.")
    elif status == 503:
        error = UpstreamOverloaded(f"Kiro is overloaded (HTTP 503): {detail}.")
    elif status >= 500:
        error = UpstreamError(f"Kiro failed (HTTP {status}): {detail}.")
    else:
        error = UpstreamError(f"Kiro answered HTTP {status}: {detail}.")
    return _Failure(signal.action, cause, error, retry_after, signal)


def _bad_request(signal: signals.UpstreamSignal, reason: str | None, detail: str, model: str) -> GatewayError:
    if signal is signals.TOO_LONG:
        return ContextTooLong(
            "The conversation is longer than the model's context window; start a new one or compact it."
        )
    if signal is signals.IMPROPER:
        return ImproperlyFormed(
            f"Kiro rejected the request as improperly formed (reason: {reason or 'none given'})."
        )
    if signal is signals.INVALID_MODEL:
        return InvalidModel(
            f"Kiro does not offer the model {clip(model)!r} to this account (invalid model ID or "
            "insufficient subscription level).",
            param="model",
        )
    return InvalidRequest(f"Kiro rejected the request: {clip(detail, 300)}.")


def _network_failure(exc: aiohttp.ClientError) -> _Failure:
    cause = _network_cause(exc)
    return _Failure("retry", cause, UpstreamError(f"Cannot reach Kiro: {cause}."))


def _network_cause(exc: aiohttp.ClientError) -> str:
    """A short, secret-free name for a network failure: refused, DNS, reset, TLS, proxy, timeout."""
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot connect to the proxy {exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        where = f"{exc.host}:{exc.port}"
        if isinstance(os_error, socket.gaierror):
            return f"DNS lookup failed for {exc.host}"
        if isinstance(os_error, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(os_error, ssl.SSLError | ssl.CertificateError):
            return f"TLS handshake with {where} failed"
        return f"cannot connect to {where} ({os_error.strerror or type(os_error).__name__})"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "connect timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientOSError) and isinstance(exc.__cause__ or exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer was cut off"
    return type(exc).__name__
