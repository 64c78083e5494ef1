"""Typed, Qt-free events the core publishes (past tense: they report what happened)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceState = Literal["stopped", "starting", "running", "stopping", "failed"]
CredentialState = Literal["ok", "expiring", "expired", "missing", "invalid"]


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
