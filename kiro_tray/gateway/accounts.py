"""The accounts registry: the pool of Kiro logins requests are served with.

Accounts come from, all at once: ``KIRO_ACCOUNTS_FILE`` (a JSON list), the accounts added in the app or
with ``kiro-tray accounts add`` (:mod:`kiro_tray.upstream.account_book`), and the single source of the
older setups (``REFRESH_TOKEN``, ``KIRO_CREDS_FILE``, the saved login, kiro-cli, the Kiro IDE: the first one
discovery finds) as one account named after its source; the auto-detected IDE and kiro-cli logins join only
when no other account is configured. A multi-tenant client brings its own account (``KEY:REFRESH_TOKEN``),
kept in a bounded LRU and never part of the pool.

Every request leases an account (:meth:`AccountsRegistry.lease`): the pin (``ACCOUNT_PIN``) while it is
available, else the strategy (``ACCOUNT_STRATEGY``: sticky, round-robin, least-used) among the available
ones. The relay reports how the attempt ended (:meth:`AccountsRegistry.report`); an account fault before the
first byte moves the request to the next account (``account_health`` says which faults, and for how long).
With one account there is no pool: it is always tried, as before, and its health is only shown.

Quota is polled per account in the background (on start, every ``USAGE_POLL_MINUTES``, after a quota or
throttle signal, and on :meth:`AccountsRegistry.check`) and metered from each answer in between. Lasting
states (quota, suspension, expired login), the last usage numbers and the enabled switches survive a restart
in ``accounts-state.json`` beside the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .. import atomic
from ..events import (
    AccountNotice,
    AccountNoticeKind,
    AccountsChanged,
    CredentialsChanged,
    CredentialsInfo,
    CredentialState,
    QuotaExhaustedSeen,
    QuotaRestored,
    RequestEvent,
    RequestFinished,
)
from ..protocol.errors import AccountSuspended, CredentialsError, GatewayError, RateLimited
from ..settings import Settings
from ..signals import Signal
from ..upstream.account_book import AccountBook, BookType, book_type
from ..upstream.accounts_file import read_accounts_file
from ..upstream.credentials import Credential, CredentialStore, TenantSource, discover
from ..upstream.credentials.base import FileSource
from ..upstream.kiro_client import ClientConfig, KiroClient, UsageFlavour
from ..upstream.secret_store import SecretStore
from ..upstream.signals import UpstreamSignal
from ..upstream.token_manager import (
    TokenEvent,
    TokenManager,
    TokenRefreshed,
    TokenRefreshFailed,
    credential_state,
)
from ..upstream.usage import Usage, fetch_usage
from .account_health import TIMED, AccountState, Health
from .auth import tenant_hash

log = logging.getLogger("kiro_tray.accounts")

MODELS_CACHE_SECONDS = 600.0
LINEAGE_LIMIT = 4096
NO_CREDENTIALS = (
    "No Kiro credentials: set REFRESH_TOKEN or KIRO_CREDS_FILE, log in to the Kiro IDE or kiro-cli, or "
    "enter a refresh token in Kiro Tray's settings."
)
AUTO_DETECTED = frozenset({"kiro_ide", "kiro_cli"})
STATE_FILE_NAME = "accounts-state.json"
#: A notice of one kind about one account is given at most once in this many seconds.
NOTICE_INTERVAL = 3600.0
QUOTA_MARKS: tuple[tuple[float, AccountNoticeKind], ...] = ((0.95, "quota_95"), (0.80, "quota_80"))
STRATEGIES = ("sticky", "round-robin", "least-used")
#: Single sources that are a file another program keeps: renaming one adds it to the book (a reference).
ADOPTABLE: frozenset[str] = frozenset({"creds_file", "kiro_ide", "kiro_cli"})


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


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as ``/v1/usage`` and the app show it: no secret; times are epoch seconds."""

    name: str
    type: str | None
    source: str  # accounts_file, app, or the single source's kind
    enabled: bool
    state: AccountState
    reason: str | None
    until: float | None  # when a timed state ends
    usage: Usage
    requests_today: int
    credits_today: float
    last_used: float | None
    requests_total: int
    failovers_total: int
    removable: bool  # added in the app (or with the CLI): removed there too
    renamable: bool


@dataclass(frozen=True, slots=True)
class AccountsView:
    """The whole pool at one moment, for the app (:meth:`AccountsRegistry.snapshot`)."""

    strategy: str
    pin: str | None
    active: str | None
    accounts: tuple[AccountView, ...]
    can_serve: bool
    pooled: int  # enabled accounts with a login: more than one is a pool with failover

    def named(self, name: str) -> AccountView | None:
        return next((a for a in self.accounts if a.name == name), None)


@dataclass(eq=False)
class Account:
    """One Kiro login of the pool (or a tenant's)."""

    name: str
    origin: str  # accounts_file, app, or the single source's kind (env, creds_file, kiro_ide, ...)
    source: CredentialStore | None
    credential: Credential | None
    error: str | None = None  # why the login could not be loaded
    enabled: bool = True
    tenant: bool = False
    book: bool = False  # added in the app: the book keeps its name and switch
    tokens_: TokenManager | None = None
    catalogue: ModelCatalogue = field(default_factory=ModelCatalogue)
    health: Health = field(default_factory=Health)
    usage: Usage | None = None
    flavour: UsageFlavour = "ide"
    quota_message: str | None = None
    day: date = field(default_factory=date.today)
    requests_today: int = 0
    credits_today: float = 0.0
    requests_total: int = 0
    failovers_total: int = 0
    last_used: float | None = None

    @property
    def tokens(self) -> TokenManager:
        if self.tokens_ is None:
            raise CredentialsError(self.error or "The gateway is not running.")
        return self.tokens_

    @property
    def auth_kind(self) -> str | None:
        credential = self.tokens_.credential if self.tokens_ is not None else self.credential
        return credential.auth_kind if credential is not None else None

    def state(self, now: float | None = None) -> AccountState:
        if not self.enabled:
            return "disabled"
        if self.credential is None:
            return "login_expired"
        return self.health.current(now)

    def usable(self) -> bool:
        return self.enabled and self.credential is not None

    def count(self, credits: float) -> None:
        today = date.today()
        if today != self.day:
            self.day, self.requests_today, self.credits_today = today, 0, 0.0
        self.requests_today += 1
        self.requests_total += 1
        self.credits_today += credits
        self.last_used = time.time()

    def view(self) -> AccountView:
        now = time.time()
        state = self.state(now)
        today = self.day == date.today()
        return AccountView(
            name=self.name,
            type=self.auth_kind,
            source=self.origin,
            enabled=self.enabled,
            state=state,
            reason=self.error if self.credential is None else self.health.reason,
            until=self.health.until if state in TIMED else None,
            usage=self.usage or Usage(),
            requests_today=self.requests_today if today else 0,
            credits_today=round(self.credits_today, 6) if today else 0.0,
            last_used=self.last_used,
            requests_total=self.requests_total,
            failovers_total=self.failovers_total,
            removable=self.book,
            renamable=self.book or (self.origin in ADOPTABLE and isinstance(self.source, FileSource)),
        )

    def row(self) -> dict[str, Any]:
        """This account for ``/v1/usage``: no secret, ISO 8601 times."""
        view = self.view()
        usage = view.usage
        return {
            "name": view.name,
            "type": view.type,
            "source": view.source,
            "enabled": view.enabled,
            "state": view.state,
            "state_reason": view.reason,
            "until": _iso(view.until),
            "plan": usage.plan,
            "credits_used": usage.credits_used,
            "credits_limit": usage.credits_limit,
            "bonus_credits": usage.bonus_credits,
            "overage": usage.overage,
            "resets_at": _iso(usage.resets_at.timestamp()) if usage.resets_at else None,
            "requests_today": view.requests_today,
            "credits_today": view.credits_today,
            "last_used": _iso(view.last_used),
            "requests_total": view.requests_total,
            "failovers_total": view.failovers_total,
        }


@dataclass(eq=False)
class Lease:
    """One attempt's account. ``spare``: another account could take the request over; ``probing``: this
    request is the one probe of an unconfirmed account (others wait for its verdict)."""

    account: Account
    spare: bool = False
    probing: bool = False

    def release(self) -> None:
        if self.probing:
            self.probing = False
            self.account.health.end_probe()


@dataclass(frozen=True, slots=True)
class _Found:
    name: str
    origin: str
    source: CredentialStore | None
    credential: Credential | None
    error: str | None
    enabled: bool = True
    book: bool = False


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
        config_dir = secret_store.fallback_path.parent
        self.book = AccountBook(config_dir, secret_store, home)
        self.state_path = config_dir / STATE_FILE_NAME
        self.credentials_changed: Signal[CredentialsChanged] = Signal("accounts.credentials")
        self.quota_exhausted: Signal[QuotaExhaustedSeen] = Signal("accounts.quota")
        self.quota_restored: Signal[QuotaRestored] = Signal("accounts.quota_restored")
        self.token_events: Signal[TokenEvent] = Signal("accounts.tokens")
        self.changed: Signal[AccountsChanged] = Signal("accounts.changed")
        self.notices: Signal[AccountNotice] = Signal("accounts.notices")
        self._accounts: list[Account] = []
        self._single: CredentialStore | None = None
        #: The REFRESH_TOKEN / PROFILE_ARN / KIRO_REGION the env source was made from: a reset with the
        #: same values keeps that source, which holds the refresh token Kiro has rotated it to.
        self._env_values: tuple[str | None, str | None, str] | None = None
        self._error: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tenants: OrderedDict[str, Account] = OrderedDict()
        #: Hash of every refresh token an account has had -> its name: a login whose token Kiro has since
        #: rotated is still the same login (newest last, bounded).
        self._lineage: OrderedDict[str, str] = OrderedDict()
        self._sticky: Account | None = None
        self._cursor = 0
        self._notified: dict[tuple[str, str], float] = {}
        self._usage_client: KiroClient | None = None
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._saving: asyncio.Task[None] | None = None
        self._save_again = False

    # ---- loading the pool ------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Load every account (blocking sources in a thread); works without a running server, so the window
        can say what it found."""
        await self.flush()
        found, persisted = await asyncio.to_thread(self._find_all)
        old = {a.name: a for a in self._accounts}
        accounts: list[Account] = []
        for item in found:
            saved = persisted.get(item.name, {})
            account = Account(
                item.name, item.origin, item.source, item.credential, item.error, book=item.book
            )
            account.enabled = item.enabled if item.book else bool(saved.get("enabled", item.enabled))
            previous = old.get(item.name)
            if previous is not None and previous.credential is not None and item.credential is not None:
                account.health, account.usage, account.flavour = (
                    previous.health,
                    previous.usage,
                    previous.flavour,
                )
                account.requests_today, account.credits_today = (
                    previous.requests_today,
                    previous.credits_today,
                )
                account.requests_total, account.failovers_total = (
                    previous.requests_total,
                    previous.failovers_total,
                )
                account.last_used = previous.last_used
            else:
                account.health = Health.from_json(saved.get("health"))
                usage = saved.get("usage")
                account.usage = Usage.from_json(usage) if isinstance(usage, dict) else None
            if item.credential is not None:
                credential = item.credential
                self._redact(credential.refresh_token, credential.access_token, credential.client_secret)
            accounts.append(account)
        self._accounts = accounts
        self._sticky = None
        if self._session is not None:
            for account in accounts:
                self._arm(account)
        if accounts:
            log.info("Kiro accounts: %s", ", ".join(f"{a.name} ({a.origin})" for a in accounts))
        elif self._error is None:
            log.warning("no Kiro credentials found: set REFRESH_TOKEN, KIRO_CREDS_FILE, or log in to Kiro")
        self._emit_credentials()
        self._emit_changed()

    def _find_all(self) -> tuple[list[_Found], dict[str, dict[str, Any]]]:
        """Every configured account (blocking); the persisted state by account name."""
        s = self.settings
        self._error = None
        found: list[_Found] = []
        if s.kiro_accounts_file is not None:
            try:
                for entry in read_accounts_file(s.kiro_accounts_file):
                    found.append(self._load(entry.name, "accounts_file", entry.source, entry.enabled))
            except CredentialsError as exc:
                self._error = exc.message
                log.error("accounts file: %s", exc.message)
        try:
            for book_entry in self.book.entries():
                source = self.book.source(book_entry)
                found.append(
                    replace(self._load(book_entry.name, "app", source, book_entry.enabled), book=True)
                )
        except CredentialsError as exc:
            log.error("accounts: %s", exc.message)
        single = self._find_single(pooled=bool(found))
        if single is not None:
            tokens = {f.credential.refresh_token for f in found if f.credential is not None}
            if single.credential is None or single.credential.refresh_token not in tokens:
                found.append(single)
        names: set[str] = set()
        unique: list[_Found] = []
        for item in found:
            name, n = item.name, 2
            while name in names:
                name, n = f"{item.name} ({n})", n + 1
            names.add(name)
            unique.append(replace(item, name=name))
        return unique, self._read_state()

    def _find_single(self, *, pooled: bool) -> _Found | None:
        s = self.settings
        env_values = (s.refresh_token, s.profile_arn, s.kiro_region)
        previous, previous_values, self._env_values = self._single, self._env_values, env_values
        try:
            source = discover(
                refresh_token=s.refresh_token,
                profile_arn=s.profile_arn,
                region=s.kiro_region,
                creds_file=s.kiro_creds_file,
                kiro_cli_db=s.kiro_cli_db_file,
                secret_store=self._secret_store,
                home=self._home,
            )
        except CredentialsError as exc:
            self._error = exc.message
            log.error("credentials: %s", exc.message)
            return None
        kept = previous is not None and source is not None and source.kind == previous.kind == "env"
        if kept and previous is not None and env_values == previous_values:
            return self._kept_env_login(previous)
        self._single = source
        if source is None or (pooled and source.kind in AUTO_DETECTED and not s.kiro_cli_db_file):
            return None
        found = self._load(source.kind, source.kind, source, True)
        if found.error is not None and not pooled:
            self._error = found.error
            log.error("credentials: %s", found.error)
            return None
        log.info("credentials: %s", source.description)
        return found

    def _kept_env_login(self, previous: CredentialStore) -> _Found:
        """A reset with the same REFRESH_TOKEN login keeps its source, which holds the refresh token Kiro
        rotated it to (the configured one is spent), and fetches a new access token as a fresh login
        would."""
        credential = previous.load()
        if credential.auth_kind != "api_key":
            credential = replace(credential, access_token=None, expires_at=None)
        log.info("credentials: %s", previous.description)
        return _Found(previous.kind, previous.kind, previous, credential, None)

    @staticmethod
    def _load(name: str, origin: str, source: CredentialStore, enabled: bool) -> _Found:
        try:
            return _Found(name, origin, source, source.load(), None, enabled)
        except CredentialsError as exc:
            log.error("account %s: %s", name, exc.message)
            return _Found(name, origin, source, None, exc.message, enabled)

    # ---- server lifecycle ----------------------------------------------------------------------------

    def attach(self, session: aiohttp.ClientSession) -> None:
        """The server started: accounts get token managers on its HTTP session, and quota polling starts."""
        self._session = session
        s = self.settings
        config = ClientConfig(
            api_base_url=s.api_base_url,
            management_base_url=s.url_for(s.kiro_management_base_url),
            max_retries=1,
            request_timeout=30.0,
        )
        self._usage_client = KiroClient(session, config)
        for account in self._accounts:
            self._arm(account)
        if s.usage_poll_minutes > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop(s.usage_poll_minutes * 60))

    def detach(self) -> None:
        """The server stopped: token managers, tenants and polling go; what was loaded stays known."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        for account in self._accounts:
            if account.tokens_ is not None:
                account.credential = account.tokens_.credential
                account.tokens_ = None
        self._session = None
        self._usage_client = None
        self._tenants.clear()
        self._schedule_save()

    async def reset(self) -> None:
        """Credential settings changed: look again, forget tenants and every catalogue."""
        self._tenants.clear()
        await self.discover()
        if self._session is not None and self._poller is None and self.settings.usage_poll_minutes > 0:
            interval = self.settings.usage_poll_minutes * 60
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop(interval))

    def _arm(self, account: Account) -> None:
        if account.credential is not None and not account.tenant:
            self._remember_lineage(account.name, account.credential)
        if self._session is None or account.credential is None or account.tokens_ is not None:
            return
        account.tokens_ = self._token_manager(account.credential, account.source, account)

    def _remember_lineage(self, name: str, credential: Credential) -> None:
        if credential.refresh_token:
            key = tenant_hash(credential.refresh_token)
            self._lineage[key] = name
            self._lineage.move_to_end(key)
            while len(self._lineage) > LINEAGE_LIMIT:
                self._lineage.popitem(last=False)

    def _lineage_owner(self, credential: Credential) -> Account | None:
        name = self._lineage.get(tenant_hash(credential.refresh_token)) if credential.refresh_token else None
        return next((a for a in self._accounts if a.name == name), None)

    def _token_manager(
        self, credential: Credential, source: CredentialStore | None, account: Account
    ) -> TokenManager:
        assert self._session is not None
        region = credential.region or self.settings.kiro_region
        return TokenManager(
            credential,
            store=source,
            session=self._session,
            auth_base_url=self.settings.url_for(self.settings.kiro_auth_base_url, region),
            oidc_base_url=self.settings.url_for(self.settings.kiro_oidc_base_url, region),
            on_event=lambda event: self._on_token_event(event, account),
        )

    # ---- choosing an account -------------------------------------------------------------------------

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts)

    def named(self, name: str) -> Account:
        for account in self._accounts:
            if account.name == name:
                return account
        raise CredentialsError(f"No Kiro account is named {name!r}.")

    @property
    def strategy(self) -> str:
        return self.settings.account_strategy.lower()

    def _pooled(self) -> list[Account]:
        return [a for a in self._accounts if a.usable()]

    def active(self) -> Account | None:
        """The account the next request would most likely go to (the UI's "active" account)."""
        pooled = self._pooled()
        now = time.time()
        available = [a for a in pooled if a.state(now) == "available"]
        if available:
            return self._choose(available, advance=False)
        return pooled[0] if pooled else (self._accounts[0] if self._accounts else None)

    def account_for(self, tenant_token: str | None) -> Account:
        """The account behind a request that needs no failover (model lists): the tenant's own, or the
        active one."""
        if tenant_token:
            return self._tenant(tenant_token)
        account = self.active()
        if account is None:
            raise CredentialsError(self._error or NO_CREDENTIALS)
        if account.tokens_ is None:
            raise CredentialsError(account.error or "The gateway is not running.")
        return account

    async def lease(self, tenant_token: str | None, tried: Collection[Account] = ()) -> Lease:
        """The account for the next attempt of a request that ``tried`` accounts already failed.

        A tenant's is its own. One usable account is always leased (no pool, as before). In a pool, the
        pin or the strategy picks among the available accounts; an account nobody has confirmed yet takes
        one probe at a time, and the requests behind it wait for the probe's verdict and choose again.
        Raises the all-unavailable error when no account can serve."""
        if tenant_token:
            return Lease(self._tenant(tenant_token))
        while True:
            pooled = self._pooled()
            if len(pooled) <= 1:
                if not pooled:
                    raise CredentialsError(self._error or self._first_error() or NO_CREDENTIALS)
                return Lease(pooled[0])
            now = time.time()
            candidates = [a for a in pooled if a not in tried and a.state(now) == "available"]
            if not candidates:
                raise self._unavailable(pooled, now)
            account = self._choose(candidates, advance=True)
            spare = len(candidates) > 1
            if account.health.confirmed:
                return Lease(account, spare=spare)
            if account.health.start_probe():
                return Lease(account, spare=spare, probing=True)
            probe = account.health.probe
            assert probe is not None
            await asyncio.shield(probe)

    def _first_error(self) -> str | None:
        return next((a.error for a in self._accounts if a.error), None)

    def _choose(self, candidates: list[Account], *, advance: bool) -> Account:
        pin = self.settings.account_pin.strip()
        for account in candidates:
            if pin and account.name == pin:
                return account
        strategy = self.strategy
        if strategy == "round-robin":
            order = {id(a): i for i, a in enumerate(self._accounts)}
            ranked = sorted(candidates, key=lambda a: (order[id(a)] - self._cursor) % len(self._accounts))
            chosen = ranked[0]
            if advance:
                self._cursor = (order[id(chosen)] + 1) % len(self._accounts)
            return chosen
        if strategy == "least-used":
            return min(candidates, key=lambda a: (a.usage.share_used if a.usage else None) or 0.0)
        if self._sticky in candidates:
            assert self._sticky is not None
            return self._sticky
        chosen = candidates[0]
        if advance and self._sticky is not chosen:
            self._sticky = chosen
            self._emit_changed()
        return chosen

    def _unavailable(self, pooled: list[Account], now: float) -> GatewayError:
        """429 with the earliest recovery when some account comes back by itself; 403 when none will."""
        states = [(a, a.state(now)) for a in pooled]
        named = "; ".join(
            f"{a.name}: {state}" + (f" until {_iso(a.health.until)}" if state in TIMED else "")
            for a, state in states
        )
        timed = [a.health.until for a, state in states if state in TIMED and a.health.until is not None]
        message = f"No Kiro account can serve this request now ({named})."
        if timed:
            return RateLimited(message, retry_after=max(1.0, min(timed) - now))
        return AccountSuspended(message)

    def _tenant(self, refresh_token: str) -> Account:
        key = tenant_hash(refresh_token)
        account = self._tenants.get(key)
        if account is not None:
            self._tenants.move_to_end(key)
            return account
        if self._session is None:
            raise CredentialsError("The gateway is not running.")
        source = TenantSource(refresh_token, region=self.settings.kiro_region)
        credential = source.load()  # the same checks as every source: empty or truncated tokens fail
        self._redact(refresh_token)
        account = Account(f"tenant {key[:12]}", "tenant", source, credential, tenant=True)
        account.tokens_ = self._token_manager(credential, source, account)
        self._tenants[key] = account
        while len(self._tenants) > max(1, self.settings.max_tenants):
            self._tenants.popitem(last=False)
        return account

    @property
    def tenant_count(self) -> int:
        return len(self._tenants)

    # ---- what attempts tell about accounts -------------------------------------------------------------

    def report(self, lease: Lease, error: GatewayError | None, signal: UpstreamSignal | None) -> bool:
        """How an attempt on ``lease`` ended (``error`` None: Kiro answered). True when the request should
        move to another account."""
        account = lease.account
        if account.tenant:
            return False
        if error is None:
            if account.health.succeeded():
                self._schedule_save()
                self._emit_changed()
            return False
        if signal is None:
            return False
        resets = account.usage.resets_at.timestamp() if account.usage and account.usage.resets_at else None
        changed = account.health.apply(signal, error.message, now=time.time(), resets_at=resets)
        if error.retry_after is not None and signal.effect == "cooling":
            account.health.cool_for(error.retry_after)
        if changed:
            log.info("account %s is now %s (%s)", account.name, account.health.state, signal.name)
            self._schedule_save()
            self._emit_changed()
            if signal.effect == "login_expired":
                self._notify("login_needed", account, f"Kiro account {account.name} needs a new login.")
            elif signal.effect == "suspended":
                self._notify("suspended", account, f"Kiro suspended the account {account.name}.")
            if signal.effect in ("quota_exhausted", "cooling"):
                self._wake.set()  # look at its quota now
        move = signal.failover and len(self._pooled()) > 1
        if move:
            account.failovers_total += 1
            self._notify(
                "failover", account, f"Kiro account {account.name} failed ({signal.name}); moved on."
            )
        return move

    def on_request(self, event: RequestEvent) -> None:
        """Requests served: per-account counters, metered credits, and the app's quota signals."""
        if not isinstance(event, RequestFinished):
            return
        out = event.outcome
        if out.tenant is not None or out.account is None:
            return
        account = next((a for a in self._accounts if a.name == out.account), None)
        if account is None:
            return
        credits = out.credits or 0.0
        account.count(credits)
        if account.usage is not None and credits:
            account.usage = account.usage.metered(credits)
            self._check_marks(account)
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
        self._emit_changed()

    def _on_token_event(self, event: TokenEvent, account: Account) -> None:
        self.token_events.emit(event)
        if account.tenant:
            return
        if isinstance(event, TokenRefreshed) and account.tokens_ is not None:
            credential = account.tokens_.credential
            self._redact(credential.refresh_token, credential.access_token, credential.client_secret)
            self._remember_lineage(account.name, credential)
        if isinstance(event, TokenRefreshFailed) and event.reason == "invalid_grant":
            self._notify("login_needed", account, f"Kiro account {account.name} needs a new login.")
        self._emit_credentials()

    # ---- quota ---------------------------------------------------------------------------------------

    async def _poll_loop(self, interval: float) -> None:
        while True:
            self._wake.clear()
            for account in list(self._accounts):
                if account.usable() and account.state() not in ("suspended", "login_expired"):
                    await self._poll(account)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    async def check(self, name: str | None = None) -> list[Account]:
        """Refresh the login and read the quota of one account (or every one) now."""
        targets = [self.named(name)] if name else [a for a in self._accounts if a.usable()]
        for account in targets:
            await self._poll(account)
        return targets

    async def _poll(self, account: Account) -> None:
        client = self._usage_client
        if client is None or account.tokens_ is None:
            return
        heard: list[UpstreamSignal] = []
        try:
            usage, account.flavour = await fetch_usage(client, account.tokens_, account.flavour, heard.append)
        except GatewayError as exc:
            log.info("could not read the quota of account %s: %s", account.name, exc.message)
            if heard:
                self.report(Lease(account), exc, heard[-1])
            return
        account.usage = usage
        health = account.health
        if health.state == "quota_exhausted" and usage.resets_at is not None:
            share = usage.share_used
            if share is not None and share < 1.0 and usage.overage is None:
                health.reset()  # the period rolled over: probe it again
            else:
                health.until = usage.resets_at.timestamp()
        self._check_marks(account)
        self._schedule_save()
        self._emit_changed()

    def _check_marks(self, account: Account) -> None:
        share = account.usage.share_used if account.usage is not None else None
        if share is None:
            return
        for mark, kind in QUOTA_MARKS:
            if share >= mark:
                used = f"{share * 100:.0f} %"
                self._notify(kind, account, f"Kiro account {account.name} has used {used} of its credits.")
                return

    def _notify(self, kind: AccountNoticeKind, account: Account, message: str) -> None:
        now = time.monotonic()
        key = (kind, account.name)
        last = self._notified.get(key)
        if last is not None and now - last < NOTICE_INTERVAL:
            return
        self._notified[key] = now
        self.notices.emit(AccountNotice(kind, account.name, message))

    # ---- managing accounts ---------------------------------------------------------------------------

    async def set_enabled(self, name: str, enabled: bool) -> None:
        account = self.named(name)
        if account.book:
            await asyncio.to_thread(self.book.update, name, enabled=enabled)
        account.enabled = enabled
        if enabled:
            account.health.reset()
        self._schedule_save()
        self._emit_changed()

    async def add(
        self,
        name: str,
        kind: BookType,
        *,
        secret: str | None = None,
        region: str | None = None,
        profile_arn: str | None = None,
        path: Path | None = None,
    ) -> Account:
        """Add an account to the book (the app's own): a pasted token or API key (its secret to the secret
        store), or a reference to a credentials file, the Kiro IDE or kiro-cli. A login that is already an
        account is refused, and nothing is kept of it."""
        if any(a.name == name.strip() for a in self._accounts):
            raise CredentialsError(f"There is already an account named {name.strip()!r}.")
        book = self.book
        entry = await asyncio.to_thread(
            book.add, name, kind, secret=secret, region=region, profile_arn=profile_arn, path=path
        )
        source = book.source(entry)
        try:
            credential = await asyncio.to_thread(source.load)
            owner = self._lineage_owner(credential)
            if owner is not None:
                raise CredentialsError(f"This login is already the account {owner.name!r}; not added twice.")
            for account in self._accounts:
                same_token = account.credential is not None and (
                    account.credential.refresh_token == credential.refresh_token
                )
                same_file = (
                    kind in ADOPTABLE
                    and account.source is not None
                    and (account.source.description == source.description)
                )
                if same_token or same_file:
                    raise CredentialsError(
                        f"This login is already the account {account.name!r}; not added twice."
                    )
        except CredentialsError:
            await asyncio.to_thread(book.remove, entry.name)
            raise
        self._redact(credential.refresh_token, credential.access_token, credential.client_secret)
        await self.discover()
        added = self.named(entry.name)
        twin = await self._same_user(added)
        if twin is not None:
            await asyncio.to_thread(book.remove, entry.name)
            await self.discover()
            raise CredentialsError(
                f"This login is the same Kiro user and profile as the account {twin.name!r}; not added twice."
            )
        self._wake.set()  # its quota, soon
        return added

    async def _same_user(self, added: Account) -> Account | None:
        """Another account of the same Kiro user and profile, by the user the usage answers name; None when
        the server is not running or Kiro does not say. Asking changes no account's health."""
        user = await self._user_of(added)
        if user is None:
            return None
        arn = added.credential.profile_arn if added.credential is not None else None
        for other in self._accounts:
            other_arn = other.credential.profile_arn if other.credential is not None else None
            if other is not added and other_arn == arn and await self._user_of(other) == user:
                return other
        return None

    async def _user_of(self, account: Account) -> str | None:
        if account.usage is not None and account.usage.user_id is not None:
            return account.usage.user_id
        client = self._usage_client
        if client is None or account.tokens_ is None:
            return None
        try:
            usage, _ = await fetch_usage(client, account.tokens_, account.flavour)
        except GatewayError:
            return None
        return usage.user_id

    async def remove(self, name: str) -> None:
        """Remove an account added in the app (its secrets go from the secret store too)."""
        account = self.named(name)
        if not account.book:
            raise CredentialsError(
                f"The account {name!r} comes from {_origin_words(account)}; remove it there."
            )
        await asyncio.to_thread(self.book.remove, name)
        await self.discover()

    async def rename(self, name: str, new_name: str) -> None:
        """Rename an account; its state, quota and counters keep. A credentials file, Kiro IDE or kiro-cli
        login found by itself is added to the book under the new name (a reference: the other program
        keeps rotating it)."""
        account = self.named(name)
        new_name = new_name.strip()
        if not new_name:
            raise CredentialsError("An account needs a name.")
        if new_name == name:
            return
        if any(a.name == new_name for a in self._accounts):
            raise CredentialsError(f"There is already an account named {new_name!r}.")
        if account.book:
            await asyncio.to_thread(self.book.update, name, new_name=new_name)
        elif account.origin in ADOPTABLE and isinstance(account.source, FileSource):
            kind = book_type(account.origin)
            await asyncio.to_thread(self._adopt, new_name, kind, account.source.path, account.enabled)
        else:
            raise CredentialsError(
                f"The account {name!r} comes from {_origin_words(account)}; rename it there."
            )
        account.name = new_name  # discover() carries state and counters over by name
        await self.discover()
        self._schedule_save()

    def _adopt(self, name: str, kind: BookType, path: Path, enabled: bool) -> None:
        self.book.add(name, kind, path=path)
        if not enabled:
            self.book.update(name, enabled=False)

    # ---- persistence ---------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s): account states start fresh", self.state_path, type(exc).__name__)
            return {}
        accounts = data.get("accounts") if isinstance(data, dict) else None
        return (
            {k: v for k, v in accounts.items() if isinstance(v, dict)} if isinstance(accounts, dict) else {}
        )

    def _snapshot(self) -> dict[str, Any]:
        accounts: dict[str, Any] = {}
        for account in self._accounts:
            entry: dict[str, Any] = {"enabled": account.enabled}
            health = account.health.as_json()
            if health is not None:
                entry["health"] = health
            if account.usage is not None:
                entry["usage"] = account.usage.as_json()
            accounts[account.name] = entry
        return {"accounts": accounts}

    def _schedule_save(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._saving is not None and not self._saving.done():
            self._save_again = True
            return
        self._saving = loop.create_task(self._save())

    async def _save(self) -> None:
        while True:
            self._save_again = False
            snapshot = self._snapshot()
            try:
                await asyncio.to_thread(_write_state, self.state_path, snapshot)
            except OSError as exc:
                log.error("cannot save the account states to %s: %s", self.state_path, exc.strerror)
            if not self._save_again:
                return

    async def flush(self) -> None:
        """Wait for a pending save of the account states."""
        if self._saving is not None:
            await asyncio.shield(self._saving)

    # ---- what the app shows --------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        return [a.row() for a in self._accounts]

    def snapshot(self) -> AccountsView:
        """Every account, the strategy, the pin and the active account, for the app."""
        active = self.active()
        return AccountsView(
            strategy=self.strategy,
            pin=self.settings.account_pin.strip() or None,
            active=active.name if active else None,
            accounts=tuple(a.view() for a in self._accounts),
            can_serve=self.can_serve(),
            pooled=len(self._pooled()),
        )

    def usage_report(self, tenant_token: str | None) -> dict[str, Any]:
        """``GET /v1/usage``: the pool, or a tenant's own account only."""
        if tenant_token:
            account = self._tenant(tenant_token)
            return {"strategy": "tenant", "active": account.name, "accounts": [account.row()]}
        active = self.active()
        return {
            "strategy": self.strategy,
            "pin": self.settings.account_pin or None,
            "active": active.name if active else None,
            "accounts": self.rows(),
        }

    def summary(self) -> dict[str, int]:
        """Accounts by state (``/health``)."""
        now = time.time()
        return dict(Counter(a.state(now) for a in self._accounts))

    def can_serve(self) -> bool:
        now = time.time()
        return any(a.state(now) == "available" for a in self._pooled()) or len(self._pooled()) == 1

    # ---- the active account's credentials (the window and /health) -------------------------------------

    def state(self) -> CredentialState:
        account = self.active()
        if account is None:
            return "invalid" if self._error else "missing"
        if account.tokens_ is not None:
            return account.tokens_.state
        if account.credential is not None:
            return credential_state(account.credential)
        return "invalid"

    def info(self) -> CredentialsInfo:
        account = self.active()
        source = account.source if account is not None else None
        credential = None
        if account is not None:
            credential = account.tokens_.credential if account.tokens_ is not None else account.credential
        expires_in: int | None = None
        if credential is not None:
            left = credential.seconds_left(datetime.now(UTC))
            expires_in = None if left is None else round(left)
        state = self.state()
        message = self._error or (account.error if account is not None else None)
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

    def _emit_changed(self) -> None:
        active = self.active()
        self.changed.emit(AccountsChanged(active.name if active else None))

    async def models(self, client: KiroClient | None, tenant_token: str | None) -> list[dict[str, Any]]:
        """The models the account behind a request offers (empty when it cannot be known)."""
        try:
            account = self.account_for(tenant_token)
        except CredentialsError:
            return []
        if client is None:
            return []
        return await account.catalogue.models(client, account.tokens)


def _write_state(path: Path, snapshot: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, snapshot, sort_keys=True)


def _origin_words(account: Account) -> str:
    if account.origin == "accounts_file":
        return "the accounts file (KIRO_ACCOUNTS_FILE)"
    return account.source.description if account.source is not None else account.origin


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
