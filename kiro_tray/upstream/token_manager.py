"""TokenManager: one Kiro login's access token, refreshed ahead of expiry, single-flight.

- ``social`` logins refresh at the Kiro desktop endpoint ``{auth_base_url}/refreshToken``
  (kiro-protocol.md 1.2); ``idc`` (Builder ID / Identity Center) logins at AWS SSO OIDC
  ``{oidc_base_url}/token`` with a camelCase JSON body (1.3); ``api_key`` credentials are never refreshed.
- Every refresh is shared: however many callers find the token expiring (or get a bearer-invalid
  401/403 for the same stale token), exactly one request goes to the refresh endpoint.
- Refresh tokens rotate on every use, so the new one is persisted at once through the
  :class:`CredentialStore` (in a worker thread: stores block).
- A dead grant (``invalid_grant``) marks the manager ``invalid``: no refresh loop, calls fail fast with
  the same :class:`CredentialsError` until :meth:`TokenManager.update_credential` hands in a new login.
- An unreachable refresh endpoint is retried a couple of times; while the current access token is still
  valid it stays in use (graceful degradation) and the next refresh is attempted after a cooldown.

Secrets never appear in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp

from ..protocol.errors import CredentialsError, GatewayError, UpstreamError
from .credentials import AuthKind, Credential, CredentialStore

log = logging.getLogger("kiro_tray.upstream.tokens")

TokenState = Literal["ok", "expiring", "ready", "expired", "missing", "invalid"]

#: Kiro IDE identity sent on refresh and API calls (kiro-protocol.md 2.2). Constant on purpose: a
#: gateway that changes its fingerprint looks less like the IDE (suspensions cluster on odd traffic).
SDK_VERSION = "1.0.34"
KIRO_VERSION = "0.11.107"
OIDC_SDK_VERSION = "3.980.0"
DEFAULT_EXPIRES_IN = 3600.0
REFRESH_ATTEMPTS = 3  # one try and two retries when the endpoint is down
#: After the endpoint was unreachable while the current token still works, wait this long before the
#: next attempt, so requests are not each delayed by a round of retries.
DEGRADED_COOLDOWN = 30.0


@dataclass(frozen=True, slots=True)
class TokenRefreshed:
    """A refresh succeeded; ``expires_at`` is the new access token's expiry (aware, UTC)."""

    auth_kind: AuthKind
    expires_at: datetime
    kind: Literal["refreshed"] = "refreshed"


@dataclass(frozen=True, slots=True)
class TokenRefreshFailed:
    """A refresh failed: ``reason`` says how, ``message`` is the user-facing explanation."""

    reason: Literal["invalid_grant", "rejected", "unreachable"]
    message: str
    kind: Literal["refresh_failed"] = "refresh_failed"


TokenEvent = TokenRefreshed | TokenRefreshFailed


class _Unreachable(Exception):
    """The refresh endpoint could not be reached or answered 5xx/429: worth retrying."""


class _InvalidGrant(Exception):
    """The refresh token is dead (400 invalid_grant)."""


def machine_id(credential: Credential) -> str:
    """A stable, secret-free 64-hex id for user agents: this machine and user plus the login's stable
    identity (OIDC client id or profile ARN; refresh tokens rotate, so they cannot be used)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "user"
    stable = credential.client_id or credential.profile_arn or ""
    seed = f"kiro-tray|{socket.gethostname()}|{user}|{credential.auth_kind}|{stable}"
    return hashlib.sha256(seed.encode()).hexdigest()


class TokenManager:
    """Hands out a valid access token for one credential. All methods run on the event loop."""

    def __init__(
        self,
        credential: Credential,
        *,
        store: CredentialStore | None,
        session: aiohttp.ClientSession,
        auth_base_url: str,
        oidc_base_url: str,
        refresh_margin: float = 600.0,
        on_event: Callable[[TokenEvent], None] | None = None,
        refresh_timeout: float = 15.0,
        refresh_backoff: float = 0.5,
    ) -> None:
        self._credential = credential
        self._store = store
        self._session = session
        self._auth_base_url = auth_base_url.rstrip("/")
        self._oidc_base_url = oidc_base_url.rstrip("/")
        self._margin = refresh_margin
        self._on_event = on_event
        self._timeout = refresh_timeout
        self._backoff = refresh_backoff
        self._inflight: asyncio.Task[Credential] | None = None
        self._invalid: CredentialsError | None = None
        self._degraded_until = 0.0  # monotonic; see DEGRADED_COOLDOWN
        self.machine_id = machine_id(credential)
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"TokenManager({self._credential!r}, state={self.state!r})"

    @property
    def credential(self) -> Credential:
        return self._credential

    @property
    def state(self) -> TokenState:
        return credential_state(self._credential, invalid=self._invalid is not None, margin=self._margin)

    def update_credential(self, credential: Credential) -> None:
        """Adopt a new login (the user logged in again): clears the ``invalid`` state."""
        self._credential = credential
        self._invalid = None
        self._degraded_until = 0.0
        self.machine_id = machine_id(credential)

    async def get_token(self) -> Credential:
        """The credential with a usable access token, refreshed first when it expires within the margin."""
        credential = self._credential
        if self._invalid is not None:
            return self._still_usable_or(self._invalid)
        if not self._wants_refresh(credential):
            return credential
        if self._inflight is None and time.monotonic() < self._degraded_until and _usable(credential):
            return credential
        return await self._shared_refresh()

    async def force_refresh(self, stale_access_token: str) -> Credential:
        """Refresh after Kiro called ``stale_access_token`` invalid; concurrent callers share one refresh
        and a token that was already replaced is not refreshed again."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
        if self._credential.access_token != stale_access_token:
            return self._credential
        if self._invalid is not None:
            raise self._invalid
        if self._credential.auth_kind == "api_key":
            raise CredentialsError("Kiro rejected the API key: check it in Kiro Tray's settings.")
        return await self._shared_refresh(forced=True)

    # ---- internals -------------------------------------------------------------------------------

    def _wants_refresh(self, credential: Credential) -> bool:
        if credential.auth_kind == "api_key":
            return False
        left = credential.seconds_left()
        return credential.access_token is None or left is None or left <= self._margin

    def _still_usable_or(self, error: CredentialsError) -> Credential:
        """While refreshing is impossible, an access token that has not expired yet still works."""
        if _usable(self._credential) and self._credential.expires_at is not None:
            return self._credential
        raise error

    async def _shared_refresh(self, *, forced: bool = False) -> Credential:
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(forced=forced))
            self._inflight = task
            task.add_done_callback(self._refresh_done)
        # shield: a caller that goes away (client disconnect) must not cancel everyone's refresh
        return await asyncio.shield(task)

    def _refresh_done(self, task: asyncio.Task[Credential]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here too, so abandoned refreshes log no "never retrieved"

    async def _refresh(self, *, forced: bool) -> Credential:
        credential = self._credential
        if credential.auth_kind == "api_key":
            return credential
        if not credential.refresh_token:
            raise self._mark_invalid(
                "rejected",
                "The Kiro login has no refresh token, so its access token cannot be renewed: "
                "log in to Kiro again.",
            )
        if "..." in credential.refresh_token:
            raise self._mark_invalid(
                "rejected",
                "The refresh token looks truncated (it contains '...', as the Kiro IDE shows it): "
                "copy the whole token from the token file instead.",
            )
        try:
            fresh = await self._refresh_with_retries(credential)
        except _InvalidGrant:
            reloaded = await self._reload_from_store(credential)
            if reloaded is None:
                error = self._mark_invalid(
                    "invalid_grant",
                    "Kiro rejected the refresh token (invalid_grant): log in to Kiro again (Kiro IDE or "
                    "kiro-cli), or paste a new refresh token in Kiro Tray's settings.",
                )
                if forced:
                    raise error from None
                return self._still_usable_or(error)
            self._credential = reloaded
            if not forced and not self._wants_refresh(reloaded):
                return reloaded
            return await self._refresh(forced=forced)
        except _Unreachable as exc:
            message = (
                f"The Kiro token refresh endpoint is unreachable ({exc}); check the network or proxy "
                "settings."
            )
            self._emit(TokenRefreshFailed("unreachable", message))
            if not forced and _usable(self._credential):
                log.warning("%s Still using the current access token.", message)
                self._degraded_until = time.monotonic() + DEGRADED_COOLDOWN
                return self._credential
            log.warning("%s", message)
            # Transient, not a bad login: a 502 the client may retry (a 401 would send the user to log in).
            raise UpstreamError(message) from None
        self._credential = fresh
        self._degraded_until = 0.0
        self.refresh_count += 1
        assert fresh.expires_at is not None
        log.info("refreshed the Kiro %s access token (valid until %s)", fresh.auth_kind, fresh.expires_at)
        await self._persist(fresh)
        self._emit(TokenRefreshed(fresh.auth_kind, fresh.expires_at))
        return fresh

    async def _refresh_with_retries(self, credential: Credential) -> Credential:
        for attempt in range(REFRESH_ATTEMPTS):
            try:
                return await self._refresh_once(credential)
            except _Unreachable as exc:
                if attempt == REFRESH_ATTEMPTS - 1:
                    raise
                delay = self._backoff * 2.0**attempt
                log.info("token refresh failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _refresh_once(self, credential: Credential) -> Credential:
        url, body, headers = self._refresh_request(credential)
        try:
            async with self._session.post(
                url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError:
            raise _Unreachable(f"no answer within {self._timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Unreachable(type(exc).__name__) from None
        if status == 429 or status >= 500:
            raise _Unreachable(f"HTTP {status}")
        if status == 400 and "invalid_grant" in text:
            raise _InvalidGrant
        if status != 200:
            raise self._mark_invalid(
                "rejected",
                f"Kiro's token endpoint refused the refresh (HTTP {status}{_error_code(text)}): log in to "
                "Kiro again.",
            )
        return _parse_refresh_answer(credential, text)

    def _refresh_request(self, credential: Credential) -> tuple[str, dict[str, str], dict[str, str]]:
        assert credential.refresh_token is not None
        if credential.auth_kind == "social":
            headers = {
                "User-Agent": f"KiroIDE-{KIRO_VERSION}-{self.machine_id}",
                "Accept": "application/json, text/plain, */*",
            }
            return f"{self._auth_base_url}/refreshToken", {"refreshToken": credential.refresh_token}, headers
        if not credential.client_id or not credential.client_secret:
            raise self._mark_invalid(
                "rejected",
                "The Builder ID / Identity Center login has no client registration (clientId and "
                "clientSecret), so it cannot be refreshed: log in to Kiro again.",
            )
        body = {
            "grantType": "refresh_token",
            "clientId": credential.client_id,
            "clientSecret": credential.client_secret,
            "refreshToken": credential.refresh_token,
        }
        headers = {
            "x-amz-user-agent": f"aws-sdk-js/{OIDC_SDK_VERSION} KiroIDE",
            "User-Agent": f"aws-sdk-js/{OIDC_SDK_VERSION} ua/2.1 api/sso-oidc#{OIDC_SDK_VERSION} m/E KiroIDE",
        }
        return f"{self._oidc_base_url}/token", body, headers

    async def _reload_from_store(self, used: Credential) -> Credential | None:
        """After invalid_grant: another program (Kiro IDE, kiro-cli) may have rotated the token behind our
        back. Adopt the stored login if it holds a different refresh token."""
        if self._store is None:
            return None
        try:
            stored = await asyncio.to_thread(self._store.load)
        except (OSError, ValueError, GatewayError) as exc:
            log.warning("could not re-read %s: %s", self._store.description, type(exc).__name__)
            return None
        if not stored.refresh_token or stored.refresh_token == used.refresh_token:
            return None
        log.info("adopting the newer Kiro login found in %s", self._store.description)
        return stored

    async def _persist(self, credential: Credential) -> None:
        if self._store is None:
            return
        try:
            await asyncio.to_thread(self._store.save, credential)
        except (OSError, ValueError, GatewayError) as exc:
            log.warning(
                "could not save the rotated Kiro token to %s (%s): the next start may need a new login",
                self._store.description,
                type(exc).__name__,
            )

    def _mark_invalid(
        self, reason: Literal["invalid_grant", "rejected", "unreachable"], message: str
    ) -> CredentialsError:
        log.warning("%s", message)
        self._invalid = CredentialsError(message)
        self._emit(TokenRefreshFailed(reason, message))
        return self._invalid

    def _emit(self, event: TokenEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)


def credential_state(credential: Credential, *, invalid: bool = False, margin: float = 600.0) -> TokenState:
    """How usable a login is: ``ready`` is a login whose access token is still to be fetched (refreshed on
    the next request, which is normal right after start); ``expired`` only an access token that can no
    longer be renewed."""
    if invalid:
        return "invalid"
    if credential.access_token is None and credential.refresh_token is None:
        return "missing"
    if credential.auth_kind == "api_key":
        return "ok"
    left = credential.seconds_left()
    if credential.access_token is None or (left is not None and left <= 0):
        return "ready" if credential.refresh_token else "expired"
    if left is None or left <= margin:
        return "expiring"
    return "ok"


def _usable(credential: Credential) -> bool:
    """The access token exists and is not known to have expired."""
    left = credential.seconds_left()
    return credential.access_token is not None and (left is None or left > 0)


def _parse_refresh_answer(credential: Credential, text: str) -> Credential:
    try:
        answer: Any = json.loads(text)
    except ValueError:
        raise _Unreachable("the answer was not JSON") from None
    access = answer.get("accessToken") if isinstance(answer, dict) else None
    if not isinstance(access, str) or not access:
        raise _Unreachable("the answer had no accessToken")
    expires_in = answer.get("expiresIn")
    seconds = (
        float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
    )
    refresh = answer.get("refreshToken")
    arn = answer.get("profileArn")
    return credential.with_tokens(
        access_token=access,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        profile_arn=arn if isinstance(arn, str) and arn else None,
    )


def _error_code(text: str) -> str:
    """``: <error code>`` from an OAuth/Kiro error body, never the body itself."""
    try:
        body = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code = body.get("error") or body.get("reason")
    return f": {code}" if isinstance(code, str) and code.isidentifier() else ""
