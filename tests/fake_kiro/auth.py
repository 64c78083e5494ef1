"""The fake Kiro's identity side: accounts, access tokens, and both refresh endpoints.

- ``POST /refreshToken`` (Kiro desktop / social): JSON ``{"refreshToken"}`` -> ``{accessToken,
  refreshToken, profileArn, expiresIn}``; an unknown or spent token -> 400 ``invalid_grant``.
- ``POST /token`` (AWS SSO OIDC CreateToken): camelCase JSON ``{grantType, clientId, clientSecret,
  refreshToken}``; form-encoded or snake_case bodies get the real bare ``400 {"error":"invalid_request"}``.

Refresh tokens rotate on every use (as Kiro's do), so a client that does not persist the new one
fails on its next refresh, exactly like production.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

BEARER_INVALID = "The bearer token included in the request is invalid."
DEFAULT_PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKEPROFILE"


@dataclass
class Account:
    refresh_token: str
    kind: Literal["social", "idc"] = "social"
    client_id: str | None = None
    client_secret: str | None = None
    profile_arn: str = DEFAULT_PROFILE_ARN
    #: The Kiro user behind the login (``userInfo.userId`` in usage answers); two logins of one user share it.
    user_id: str = field(default_factory=lambda: f"fake-user-{secrets.token_hex(4)}")
    access_ttl: int = 3600
    rotate: bool = True
    #: Per-account signals (kiro-protocol.md 9.5): 403 TEMPORARILY_SUSPENDED, 423 locked, 402
    #: MONTHLY_REQUEST_COUNT, 429 USER_REQUEST_RATE_EXCEEDED (``retry_after`` seconds when set), 429
    #: "suspicious activity"; ``login_expired`` makes refresh answer invalid_grant and kills access tokens.
    suspended: bool = False
    locked: bool = False
    quota_exhausted: bool = False
    throttled: bool = False
    retry_after: float | None = None
    suspicious: bool = False
    login_expired: bool = False
    #: This account's getUsageLimits answer (None: the server's ``usage``); metering adds to it.
    usage: dict[str, Any] | None = None
    #: generateAssistantResponse calls that reached this account (after authentication).
    generate_calls: int = 0
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch seconds)
    refresh_count: int = 0

    def issue_access_token(self, ttl: int | None = None) -> str:
        token = "aoa" + secrets.token_urlsafe(48)
        self.access_tokens[token] = time.time() + (self.access_ttl if ttl is None else ttl)
        return token

    def expire_access_tokens(self) -> None:
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0

    def expire_login(self) -> None:
        """The login is revoked: the next refresh gets invalid_grant, access tokens stop working."""
        self.login_expired = True
        self.expire_access_tokens()


@dataclass
class AuthState:
    accounts: dict[str, Account] = field(default_factory=dict)  # by current refresh token
    refresh_calls: int = 0
    oidc_calls: int = 0
    #: Scripted failures for the refresh endpoints: "down" (503), "invalid_grant", or None.
    refresh_failure: Literal["down", "invalid_grant"] | None = None
    #: Delay before a refresh answers (lets tests pile concurrent callers onto one refresh).
    refresh_delay: float = 0.0
    #: Access tokens issued by refresh ask for this TTL (None: the account's own).
    issued_ttl: int | None = None

    def add_account(self, refresh_token: str | None = None, **kwargs: object) -> Account:
        token = refresh_token or "rt-" + secrets.token_urlsafe(96)
        account = Account(refresh_token=token, **kwargs)  # type: ignore[arg-type]
        if account.kind == "idc":
            account.client_id = account.client_id or "client-" + secrets.token_hex(8)
            account.client_secret = account.client_secret or "secret-" + secrets.token_hex(16)
        self.accounts[token] = account
        return account

    def account_for_access_token(self, token: str) -> tuple[Account | None, bool]:
        """(account, still valid) for a bearer token; (None, False) when unknown."""
        now = time.time()
        for account in self.accounts.values():
            expiry = account.access_tokens.get(token)
            if expiry is not None:
                return account, expiry > now
        return None, False

    def _rotate(self, account: Account) -> dict[str, object]:
        account.refresh_count += 1
        if account.rotate:
            del self.accounts[account.refresh_token]
            account.refresh_token = "rt-" + secrets.token_urlsafe(96)
            self.accounts[account.refresh_token] = account
        access = account.issue_access_token(self.issued_ttl)
        ttl = self.issued_ttl if self.issued_ttl is not None else account.access_ttl
        return {"accessToken": access, "refreshToken": account.refresh_token, "expiresIn": ttl}

    async def _scripted_failure(self) -> web.Response | None:
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if self.refresh_failure == "down":
            return web.json_response({"message": "Service Unavailable"}, status=503)
        if self.refresh_failure == "invalid_grant":
            return _invalid_grant()
        return None

    async def handle_refresh_token(self, request: web.Request) -> web.Response:
        self.refresh_calls += 1
        failure = await self._scripted_failure()
        if failure is not None:
            return failure
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"message": "Invalid JSON"}, status=400)
        token = body.get("refreshToken") if isinstance(body, dict) else None
        account = self.accounts.get(token) if isinstance(token, str) else None
        if account is None or account.login_expired:
            return _invalid_grant()
        if account.kind != "social":
            return web.json_response({"message": "Unauthorized"}, status=401)
        answer = self._rotate(account)
        answer["profileArn"] = account.profile_arn
        return web.json_response(answer)

    async def handle_oidc_token(self, request: web.Request) -> web.Response:
        self.oidc_calls += 1
        failure = await self._scripted_failure()
        if failure is not None:
            return failure
        if request.content_type != "application/json":
            return web.json_response({"error": "invalid_request"}, status=400)
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.json_response({"error": "invalid_request"}, status=400)
        if not isinstance(body, dict) or body.get("grantType") != "refresh_token":
            return web.json_response({"error": "invalid_request"}, status=400)
        account = self.accounts.get(body.get("refreshToken", ""))
        if account is None or account.login_expired:
            return _invalid_grant()
        if account.kind != "idc" or (
            body.get("clientId") != account.client_id or body.get("clientSecret") != account.client_secret
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client"}, status=400
            )
        return web.json_response(self._rotate(account))


def _invalid_grant() -> web.Response:
    return web.json_response(
        {"error": "invalid_grant", "error_description": "Invalid refresh token provided"}, status=400
    )


def bearer_error() -> web.Response:
    return web.json_response({"message": BEARER_INVALID, "reason": None}, status=403)
