"""The Kiro login as the UI shows it: one reading of the service, one set of words for every place.

A loaded login whose access token has expired (or was never fetched) is *ready*: the next request refreshes
it. Only a missing login, or one Kiro rejected, is a problem. The tray menu, its tooltip, the status bar and
the settings panel all use :data:`CREDENTIAL_WORDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import CredentialState
from ..gateway.service import GatewayService

CREDENTIAL_WORDS: dict[CredentialState, str] = {
    "ok": "ready",
    "expiring": "ready",
    "expired": "ready",  # refreshed by the next request, as every access token is
    "missing": "no Kiro login found",
    "invalid": "rejected by Kiro, log in again",
}
PROBLEM_STATES: frozenset[CredentialState] = frozenset({"missing", "invalid"})


@dataclass(frozen=True, slots=True)
class CredentialView:
    state: CredentialState
    where: str | None = None  # e.g. "Kiro IDE login (~/.aws/sso/cache/kiro-auth-token.json)"
    auto_detected: bool = False
    message: str | None = None

    @property
    def words(self) -> str:
        return CREDENTIAL_WORDS[self.state]

    @property
    def problem(self) -> bool:
        return self.state in PROBLEM_STATES

    def sentence(self) -> str:
        """The settings panel's line: where the login comes from and the same words as the tray."""
        if self.where:
            prefix = "Detected and using" if self.auto_detected else "Using"
            text = f"{prefix} {self.where}: {self.words}."
        else:
            text = f"{self.words[0].upper()}{self.words[1:]}."
        return f"{text}\n{self.message}" if self.message else text


def read_credentials(service: GatewayService, last: CredentialView | None = None) -> CredentialView:
    """The one place the UI asks the service about its Kiro login.

    Today the service holds a login only while its server runs (starting, stopped or failed, it may report
    "missing"), so then the ``last`` answer stands; pass ``last=None`` right after the service announced a
    (re)loaded login. When the service can describe credentials without a server
    (``service.accounts.info()``), this reads that instead and ``last`` goes away."""
    if service.state != "running" and last is not None:
        return last
    info = service.credentials_info()
    return CredentialView(
        state=info["state"],
        where=info.get("where"),
        auto_detected=bool(info.get("auto_detected")),
        message=info.get("message"),
    )
