"""One account's health: whether it may serve now, why not, and until when.

States (``AccountState``)::

    available        may serve (``confirmed`` once a request succeeded since the last doubt)
    cooling          throttled or risk-limited: back by itself at ``until`` (repeats double the wait)
    quota_exhausted  the monthly credits are used up: back at ``until`` (the reset date, else a re-check)
    suspended        suspended or locked by Kiro: back only when a person enables it again
    login_expired    the login is dead: back only with a new login (or enabling it again to retry)
    disabled         switched off by the user

A signal of :mod:`kiro_tray.upstream.signals` moves an account with :meth:`Health.apply`. An account that
is not ``confirmed`` (just started, just back from a cooldown) is probed: one request at a time goes to it
until one succeeds, so concurrent requests never stampede an account that may still be failing. Only the
lasting states (quota, suspension, expired login) survive a restart; cooldowns do not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..upstream.signals import COOLDOWN_CAP, UpstreamSignal

AccountState = Literal["available", "cooling", "quota_exhausted", "suspended", "login_expired", "disabled"]
#: How long a used-up quota keeps an account out when its reset date is unknown (then it is re-checked).
QUOTA_RECHECK = 6 * 3600.0
#: States written to disk: a restart must not send requests to an account Kiro already refused for good.
LASTING: frozenset[AccountState] = frozenset({"quota_exhausted", "suspended", "login_expired"})
#: States that end by themselves when their time comes (the client may come back then).
TIMED: frozenset[AccountState] = frozenset({"cooling", "quota_exhausted"})


@dataclass
class Health:
    state: AccountState = "available"
    reason: str | None = None
    until: float | None = None  # epoch seconds, for the timed states
    strikes: int = 0  # throttles in a row (the cooldown doubles with each)
    confirmed: bool = False
    probe: asyncio.Future[None] | None = field(default=None, repr=False)

    def current(self, now: float | None = None) -> AccountState:
        """The state now: a timed state whose time has come is available again (to be probed)."""
        if self.state in TIMED and self.until is not None and (now or time.time()) >= self.until:
            self.state, self.reason, self.until, self.confirmed = "available", None, None, False
        return self.state

    def apply(self, signal: UpstreamSignal, message: str, *, now: float, resets_at: float | None) -> bool:
        """Move by ``signal`` (Kiro said ``message``); True when the state changed."""
        before = (self.state, self.until)
        self.confirmed = False
        match signal.effect:
            case "none":
                return False
            case "cooling":
                self.strikes += 1
                wait = min(COOLDOWN_CAP, signal.cooldown * 2.0 ** (self.strikes - 1))
                self._set("cooling", message, now + max(wait, signal.cooldown))
            case "quota_exhausted":
                until = resets_at if resets_at is not None and resets_at > now else now + QUOTA_RECHECK
                self._set("quota_exhausted", message, until)
            case "suspended" | "login_expired":
                self._set(signal.effect, message, None)
        return (self.state, self.until) != before

    def cool_for(self, seconds: float) -> None:
        """Kiro asked for ``Retry-After`` longer than the computed cooldown."""
        if self.state == "cooling" and self.until is not None:
            self.until = max(self.until, time.time() + seconds)

    def succeeded(self) -> bool:
        """A request was served; True when that ended a problem state."""
        changed = self.state != "available"
        self._set("available", None, None)
        self.strikes = 0
        self.confirmed = True
        return changed

    def reset(self) -> None:
        """A person enabled the account again: forget what happened, probe it first."""
        self._set("available", None, None)
        self.strikes = 0
        self.confirmed = False

    def _set(self, state: AccountState, reason: str | None, until: float | None) -> None:
        self.state, self.reason, self.until = state, reason, until

    # ---- one probe at a time ---------------------------------------------------------------------

    def start_probe(self) -> bool:
        """Become the probe of an unconfirmed account; False when another request already is."""
        if self.probe is not None and not self.probe.done():
            return False
        self.probe = asyncio.get_running_loop().create_future()
        return True

    def end_probe(self) -> None:
        if self.probe is not None and not self.probe.done():
            self.probe.set_result(None)
        self.probe = None

    # ---- persistence -----------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any] | None:
        if self.state not in LASTING:
            return None
        return {"state": self.state, "reason": self.reason, "until": self.until}

    @classmethod
    def from_json(cls, data: object) -> Health:
        if not isinstance(data, dict) or data.get("state") not in LASTING:
            return cls()
        until = data.get("until")
        reason = data.get("reason")
        return cls(
            state=data["state"],
            reason=reason if isinstance(reason, str) else None,
            until=float(until) if isinstance(until, int | float) and not isinstance(until, bool) else None,
        )
