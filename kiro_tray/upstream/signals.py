"""The one table of Kiro's error signals: what each means for the request and for the account that sent it.

Every non-200 answer (and a refresh that Kiro refuses) is classified here once, by the first row of
:data:`SIGNALS` that matches (kiro-protocol.md 4.1 and 9.5). A row says what the client does about it
(``action``: give up, back off and retry, force one token refresh, retry without the profile ARN), what
becomes of the account (``effect``), and whether the same client request may move to another account
(``failover``). Request faults (a body Kiro rejects, an unknown model, a conversation too long) and
Kiro-wide capacity never move a request: another account would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: What the client does about one failed attempt.
Action = Literal["fail", "retry", "refresh", "drop_arn"]
#: What an account becomes after the signal (``none``: its health does not change).
Effect = Literal["none", "quota_exhausted", "cooling", "suspended", "login_expired"]
#: ``(status, reason, lower-cased message and reason)`` -> whether a row applies.
Matcher = Callable[[int, "str | None", str], bool]


@dataclass(frozen=True, slots=True)
class UpstreamSignal:
    name: str
    meaning: str
    action: Action
    effect: Effect = "none"
    failover: bool = False
    #: For ``cooling``: the first cooldown in seconds (doubled on each repeat, see ``COOLDOWN_CAP``).
    cooldown: float = 0.0


#: The longest a repeated throttle parks an account.
COOLDOWN_CAP = 600.0

QUOTA = UpstreamSignal(
    "quota_exhausted", "the monthly credits are used up", "fail", "quota_exhausted", failover=True
)
CAPACITY = UpstreamSignal("capacity", "Kiro-wide model capacity (not this account's fault)", "fail")
RISK = UpstreamSignal(
    "suspicious_activity", "Kiro's risk control limits the account", "fail", "cooling", True, 1800.0
)
THROTTLED = UpstreamSignal("throttled", "the per-user rate limit", "retry", "cooling", True, 10.0)
SUSPENDED = UpstreamSignal("suspended", "the account is suspended or locked", "fail", "suspended", True)
BEARER_INVALID = UpstreamSignal(
    "bearer_invalid", "the access token is stale (one forced refresh)", "refresh", "login_expired", True
)
NOT_AUTHORIZED = UpstreamSignal("not_authorized", "the profile ARN does not fit the login", "drop_arn")
LOGIN_REFUSED = UpstreamSignal("login_refused", "Kiro refused the login", "fail", "login_expired", True)
LOGIN_REVOKED = UpstreamSignal(
    "login_revoked", "the refresh token was revoked (invalid_grant)", "fail", "login_expired", True
)
TOO_LONG = UpstreamSignal("too_long", "the conversation is longer than the model's window", "fail")
IMPROPER = UpstreamSignal("improperly_formed", "Kiro rejected the request body", "fail")
INVALID_MODEL = UpstreamSignal("invalid_model", "the model is not offered to this plan", "fail")
BAD_REQUEST = UpstreamSignal("bad_request", "another request fault", "fail")
TRANSIENT = UpstreamSignal("transient", "408 or 5xx: retried with backoff", "retry")
OTHER = UpstreamSignal("other", "an unexpected status", "fail")


def _has(*phrases: str) -> Callable[[str], bool]:
    return lambda said: any(phrase in said for phrase in phrases)


_suspended_words = _has("suspended", "locked your account", "account is locked")
_capacity_words = _has("insufficient_model_capacity", "high volume of traffic")
_too_long_words = _has("content_length_exceeds_threshold", "input is too long")

#: In order: the first row whose matcher accepts the answer is its classification.
SIGNALS: tuple[tuple[UpstreamSignal, Matcher], ...] = (
    (QUOTA, lambda status, reason, said: status == 402 or reason == "MONTHLY_REQUEST_COUNT"),
    (CAPACITY, lambda status, reason, said: _capacity_words(said)),
    (RISK, lambda status, reason, said: status == 429 and "suspicious activity" in said),
    (THROTTLED, lambda status, reason, said: status == 429),
    (
        SUSPENDED,
        lambda status, reason, said: (
            status == 423
            or (status in (401, 403) and (reason == "TEMPORARILY_SUSPENDED" or _suspended_words(said)))
        ),
    ),
    (
        BEARER_INVALID,
        lambda status, reason, said: status in (401, 403) and "bearer token" in said and "invalid" in said,
    ),
    (NOT_AUTHORIZED, lambda status, reason, said: status in (401, 403) and "not authorized" in said),
    (LOGIN_REFUSED, lambda status, reason, said: status in (401, 403)),
    (TOO_LONG, lambda status, reason, said: status == 400 and _too_long_words(said)),
    (IMPROPER, lambda status, reason, said: status == 400 and "improperly formed" in said),
    (INVALID_MODEL, lambda status, reason, said: status == 400 and "invalid model id" in said),
    (BAD_REQUEST, lambda status, reason, said: status == 400),
    (TRANSIENT, lambda status, reason, said: status == 408 or status >= 500),
)


def classify(status: int, reason: str | None, message: str) -> UpstreamSignal:
    """The row of :data:`SIGNALS` for an answer (``OTHER`` when none matches)."""
    said = f"{message} {reason or ''}".lower()
    for signal, matches in SIGNALS:
        if matches(status, reason, said):
            return signal
    return OTHER
