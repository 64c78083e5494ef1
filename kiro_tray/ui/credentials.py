"""The Kiro login as the UI shows it: one reading of the service, one set of words for every place.

A loaded login whose access token has expired (or was never fetched) is *ready*: the next request refreshes
it. Only a missing login, one Kiro rejected, or an access token nothing can renew is a problem. The tray
menu, its tooltip, the status bar and the settings panel all use :data:`CREDENTIAL_WORDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import CredentialState
from ..gateway.service import GatewayService

CREDENTIAL_WORDS: dict[CredentialState, str] = {
    "ok": "ready",
    "expiring": "ready",
    "ready": "ready",  # the access token is fetched by the next request
    "expired": "expired, log in again",  # an access token that nothing can renew
    "missing": "no Kiro login found",
    "invalid": "rejected by Kiro, log in again",
}
PROBLEM_STATES: frozenset[CredentialState] = frozenset({"missing", "invalid", "expired"})


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


def read_credentials(service: GatewayService) -> CredentialView:
    """The one place the UI asks the service about its Kiro login (known whether the server runs or not)."""
    info = service.accounts.info()
    return CredentialView(
        state=info.state, where=info.where, auto_detected=info.auto_detected, message=info.message
    )
