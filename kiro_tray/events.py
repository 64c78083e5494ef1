"""Typed, Qt-free events the core publishes (past tense: they report what happened)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceState = Literal["stopped", "starting", "running", "stopping", "failed"]
CredentialState = Literal["ok", "expiring", "ready", "expired", "missing", "invalid"]


@dataclass(frozen=True, slots=True)
class ServiceStateChanged:
    state: ServiceState
    url: str | None = None
    message: str | None = None
    #: "port_busy" / "already_running" / "credentials" / "quota" / None: why a problem state was entered.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CredentialsChanged:
    state: CredentialState
    source: str | None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class QuotaExhaustedSeen:
    message: str


@dataclass(frozen=True, slots=True)
class QuotaRestored:
    """The account that had used up its quota served a request again."""

    account: str


AccountNoticeKind = Literal["failover", "quota_80", "quota_95", "login_needed", "suspended"]


@dataclass(frozen=True, slots=True)
class AccountsChanged:
    """An account was added, removed, changed state or quota, or the active account changed."""

    active: str | None


@dataclass(frozen=True, slots=True)
class AccountNotice:
    """Something about an account a person should hear of (the app rate-limits these per kind and
    account): a failover away from it, 80 % / 95 % of its credits used, a login to renew, a suspension."""

    kind: AccountNoticeKind
    account: str
    message: str


@dataclass(frozen=True, slots=True)
class CredentialsInfo:
    """What is known of the gateway's own Kiro login, running or not (``/health``, the window)."""

    state: CredentialState
    source: str | None = None  # the source kind: env, creds_file, kiro_ide, kiro_cli, keyring
    where: str | None = None  # a description a person understands
    auto_detected: bool = False
    auth_kind: str | None = None
    expires_in_s: int | None = None
    message: str | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "state": self.state,
            "source": self.source,
            "where": self.where,
            "auto_detected": self.auto_detected,
        }
        if self.auth_kind is not None:
            body["auth_kind"] = self.auth_kind
            body["expires_in_s"] = self.expires_in_s
        if self.message:
            body["message"] = self.message
        return body


# --- one request, as the middleware reports it (store, metrics, logs and the UI subscribe) ---------------


@dataclass(frozen=True, slots=True)
class RequestStarted:
    key: int  # unique in this process (request ids come from clients and may repeat)
    request_id: str
    method: str
    path: str
    api: str  # the dialect's record label ("openai", "anthropic", ...)
    client: str
    headers: dict[str, str]  # a safe, clipped subset
    started_at: float  # wall clock, epoch seconds


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """A streamed answer sent its first byte."""

    key: int  # unique in this process (request ids come from clients and may repeat)
    request_id: str
    first_byte_ms: float


@dataclass(slots=True)
class Outcome:
    """What serving one request came to: noted while it is served, published when it ends."""

    first_byte_ms: float | None = None
    streamed: bool = False  # a ResponseStarted was published for it
    model: str | None = None
    stream: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    credits: float | None = None
    retries: int = 0
    account: str | None = None
    #: Accounts that failed before the first byte and handed the request on: ``"work: quota_exhausted"``.
    hops: tuple[str, ...] = ()
    tenant: str | None = None  # short hash of a tenant's token, never the token
    repairs: tuple[str, ...] = ()
    dropped_tools: tuple[str, ...] = ()
    summary: str = ""
    response_preview: str = ""
    error: str | None = None
    error_kind: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFinished:
    key: int  # unique in this process (request ids come from clients and may repeat)
    request_id: str
    method: str
    path: str
    route: str  # the route as registered (``/v1/messages``), never the raw path
    api: str
    status: int
    total_ms: float
    outcome: Outcome  # a copy: subscribers may keep it
    client_address: str | None = None


RequestEvent = RequestStarted | ResponseStarted | RequestFinished
