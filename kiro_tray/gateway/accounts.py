"""The accounts registry: the Kiro logins requests are served with.

An :class:`Account` is one login with its token manager and its model catalogue. The gateway's own
account comes from the first credential source that has a login (``discover``); a multi-tenant client
brings its own (``KEY:REFRESH_TOKEN``), kept in a bounded LRU keyed by a hash of the token, and checked
like every other source. The registry knows the credential state whether the server runs or not; token
managers exist only while it runs (they share the server's HTTP session). Upstream health that outlives a
request (a used-up quota) is kept per account from the request events; a tenant's never marks the app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from ..events import (
    CredentialsChanged,
    CredentialsInfo,
    CredentialState,
    QuotaExhaustedSeen,
    QuotaRestored,
    RequestEvent,
    RequestFinished,
)
from ..protocol.errors import CredentialsError
from ..settings import Settings
from ..signals import Signal
from ..upstream.credentials import Credential, CredentialStore, TenantSource, discover
from ..upstream.kiro_client import KiroClient
from ..upstream.secret_store import SecretStore
from ..upstream.token_manager import TokenEvent, TokenManager, TokenRefreshed, credential_state
from .auth import tenant_hash

log = logging.getLogger("kiro_tray.accounts")

MODELS_CACHE_SECONDS = 600.0
NO_CREDENTIALS = (
    "No Kiro credentials: set REFRESH_TOKEN or KIRO_CREDS_FILE, log in to the Kiro IDE or kiro-cli, or "
    "enter a refresh token in Kiro Tray's settings."
)
AUTO_DETECTED = frozenset({"kiro_ide", "kiro_cli"})


class ModelCatalogue:
    """One account's ``ListAvailableModels``, cached for a while; empty when it cannot be had."""

    def __init__(self, ttl: float = MODELS_CACHE_SECONDS) -> None:
        self._ttl = ttl
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    async def models(self, client: KiroClient, tokens: TokenManager) -> list[dict[str, Any]]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self._ttl:
            return self._cached[1]
        try:
            models = await client.list_models(tokens)
        except Exception as exc:
            log.warning("ListAvailableModels failed, listing the built-in models only: %s", exc)
            return []
        self._cached = (now, models)
        return models


@dataclass(eq=False)
class Account:
    name: str
    tokens: TokenManager
    tenant: bool = False
    catalogue: ModelCatalogue = field(default_factory=ModelCatalogue)
    quota_message: str | None = None


class AccountsRegistry:
    def __init__(
        self,
        settings: Settings,
        *,
        secret_store: SecretStore,
        home: Path | None = None,
        redact: Callable[..., None] | None = None,
    ) -> None:
        self.settings = settings
        self._secret_store = secret_store
        self._home = home
        self._redact = redact or (lambda *secrets: None)
        self.credentials_changed: Signal[CredentialsChanged] = Signal("accounts.credentials")
        self.quota_exhausted: Signal[QuotaExhaustedSeen] = Signal("accounts.quota")
        self.quota_restored: Signal[QuotaRestored] = Signal("accounts.quota_restored")
        self.token_events: Signal[TokenEvent] = Signal("accounts.tokens")
        self._source: CredentialStore | None = None
        #: The REFRESH_TOKEN / PROFILE_ARN / KIRO_REGION the env source was made from: a reset with the
        #: same values keeps that source, which holds the refresh token Kiro has rotated it to.
        self._env_values: tuple[str | None, str | None, str] | None = None
        self._credential: Credential | None = None
        self._error: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._default: Account | None = None
        self._tenants: OrderedDict[str, Account] = OrderedDict()

    # ---- the gateway's own account -----------------------------------------------------------------

    async def discover(self) -> None:
        """Find and load the gateway's own login (blocking sources run in a thread); works without a
        running server, so the window can say what it found."""
        s = self.settings
        self._error = None
        env_values = (s.refresh_token, s.profile_arn, s.kiro_region)
        try:
            source = await asyncio.to_thread(
                discover,
                refresh_token=s.refresh_token,
                profile_arn=s.profile_arn,
                region=s.kiro_region,
                creds_file=s.kiro_creds_file,
                kiro_cli_db=s.kiro_cli_db_file,
                secret_store=self._secret_store,
                home=self._home,
            )
            credential: Credential | None = None
            if source is not None:
                kept = self._kept_env_login(source, env_values)
                source, credential = kept or (source, await asyncio.to_thread(source.load))
        except CredentialsError as exc:
            source, credential = None, None
            self._error = exc.message
            log.error("credentials: %s", exc.message)
        self._source, self._credential = source, credential
        self._env_values = env_values
        if credential is not None and source is not None:
            self._redact(credential.refresh_token, credential.access_token, credential.client_secret)
            log.info("credentials: %s", source.description)
        elif self._error is None:
            log.warning("no Kiro credentials found: set REFRESH_TOKEN, KIRO_CREDS_FILE, or log in to Kiro")
        self._default = None
        if credential is not None and source is not None:
            self._default = self._account(source.kind, credential, source)
        self._emit_credentials()

    def _kept_env_login(
        self, found: CredentialStore, env_values: tuple[str | None, str | None, str]
    ) -> tuple[CredentialStore, Credential] | None:
        """A reset with the same REFRESH_TOKEN login keeps its source, which holds the refresh token Kiro
        rotated it to (the configured one is spent), and fetches a new access token as a fresh login would."""
        previous = self._source
        if previous is None or not found.kind == previous.kind == "env" or self._env_values != env_values:
            return None
        credential = previous.load()
        if credential.auth_kind != "api_key":
            credential = replace(credential, access_token=None, expires_at=None)
        return previous, credential

    def attach(self, session: aiohttp.ClientSession) -> None:
        """The server started: accounts get token managers on its HTTP session."""
        self._session = session
        if self._credential is not None and self._source is not None:
            self._default = self._account(self._source.kind, self._credential, self._source)

    def detach(self) -> None:
        """The server stopped: token managers and tenants go; what was loaded stays known."""
        if self._default is not None:
            self._credential = self._default.tokens.credential
        self._session = None
        self._default = None
        self._tenants.clear()

    async def reset(self) -> None:
        """Credential settings changed: look again, forget tenants and every catalogue."""
        self._tenants.clear()
        self._default = None
        await self.discover()

    # ---- choosing an account -------------------------------------------------------------------------

    def account_for(self, tenant_token: str | None) -> Account:
        """The account a request is served by: the tenant's own, or the gateway's."""
        if tenant_token:
            return self._tenant(tenant_token)
        if self._default is None:
            raise CredentialsError(self._error or NO_CREDENTIALS)
        return self._default

    def _tenant(self, refresh_token: str) -> Account:
        key = tenant_hash(refresh_token)
        account = self._tenants.get(key)
        if account is not None:
            self._tenants.move_to_end(key)
            return account
        source = TenantSource(refresh_token, region=self.settings.kiro_region)
        credential = source.load()  # the same checks as every source: empty or truncated tokens fail
        self._redact(refresh_token)
        account = self._account(f"tenant {key[:12]}", credential, source, tenant=True)
        if account is None:
            raise CredentialsError("The gateway is not running.")
        self._tenants[key] = account
        while len(self._tenants) > max(1, self.settings.max_tenants):
            self._tenants.popitem(last=False)
        return account

    def _account(
        self, name: str, credential: Credential, source: CredentialStore | None, *, tenant: bool = False
    ) -> Account | None:
        if self._session is None:
            return None
        region = credential.region or self.settings.kiro_region
        tokens = TokenManager(
            credential,
            store=source,
            session=self._session,
            auth_base_url=self.settings.url_for(self.settings.kiro_auth_base_url, region),
            oidc_base_url=self.settings.url_for(self.settings.kiro_oidc_base_url, region),
            on_event=lambda event: self._on_token_event(event, tenant),
        )
        return Account(name, tokens, tenant=tenant)

    @property
    def tenant_count(self) -> int:
        return len(self._tenants)

    # ---- state -----------------------------------------------------------------------------------------

    def state(self) -> CredentialState:
        if self._default is not None:
            return self._default.tokens.state
        if self._credential is not None:
            return credential_state(self._credential)
        return "invalid" if self._error else "missing"

    def info(self) -> CredentialsInfo:
        source = self._source
        credential = self._default.tokens.credential if self._default is not None else self._credential
        expires_in: int | None = None
        if credential is not None:
            left = credential.seconds_left(datetime.now(UTC))
            expires_in = None if left is None else round(left)
        state = self.state()
        message = self._error
        if message is None and state == "invalid":
            message = "Kiro rejected the refresh token: log in to Kiro again."
        return CredentialsInfo(
            state=state,
            source=source.kind if source else None,
            where=source.description if source else None,
            auto_detected=source is not None
            and source.kind in AUTO_DETECTED
            and not (self.settings.kiro_cli_db_file or self.settings.kiro_creds_file),
            auth_kind=credential.auth_kind if credential is not None else None,
            expires_in_s=expires_in,
            message=message,
        )

    def _emit_credentials(self) -> None:
        info = self.info()
        self.credentials_changed.emit(CredentialsChanged(info.state, info.where, info.message))

    def _on_token_event(self, event: TokenEvent, tenant: bool) -> None:
        self.token_events.emit(event)
        if tenant:
            return
        if isinstance(event, TokenRefreshed) and self._default is not None:
            credential = self._default.tokens.credential
            self._redact(credential.refresh_token, credential.access_token, credential.client_secret)
        self._emit_credentials()

    async def models(self, client: KiroClient | None, tenant_token: str | None) -> list[dict[str, Any]]:
        """The models the account behind a request offers (empty when it cannot be known)."""
        try:
            account = self.account_for(tenant_token)
        except CredentialsError:
            return []
        if client is None:
            return []
        return await account.catalogue.models(client, account.tokens)

    # ---- what requests tell about accounts --------------------------------------------------------------

    def on_request(self, event: RequestEvent) -> None:
        if not isinstance(event, RequestFinished):
            return
        out = event.outcome
        account = self._default
        if account is None or out.tenant is not None or out.account != account.name:
            return
        if out.error_kind == "quota":
            first = account.quota_message is None
            account.quota_message = out.error or "The monthly Kiro quota is used up."
            if first:
                self.quota_exhausted.emit(QuotaExhaustedSeen(account.quota_message))
        elif out.error_kind == "credentials":
            self._emit_credentials()
        elif event.status < 400 and out.error_kind is None and account.quota_message is not None:
            account.quota_message = None
            self.quota_restored.emit(QuotaRestored(account.name))
