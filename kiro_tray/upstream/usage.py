"""An account's quota: Kiro's usage limits, parsed, and fetched in the flavour the account answers.

``getUsageLimits`` (IDE flavour, on the API host) and ``Get-Usage-Limits`` (management flavour, on
``management.{region}.kiro.dev``) answer the same shape (kiro-protocol.md 9.3). Which one an account
answers is uncertain, so :func:`fetch_usage` tries the remembered flavour first and falls back to the other
when the first is refused as a wrong address or a wrong login type; the flavour that worked is returned to
be remembered. Credits used this period are base usage plus trial and bonus usage; the trial and bonus
grants are kept apart from the plan's limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..protocol.errors import GatewayError
from . import signals
from .kiro_client import Classified, KiroClient, UsageFlavour
from .signals import UpstreamSignal
from .token_manager import TokenManager

#: Signals after which the other flavour is worth a try: the host or the login type was wrong for it.
_FALLBACK_SIGNALS = frozenset(
    {signals.NOT_AUTHORIZED, signals.LOGIN_REFUSED, signals.BAD_REQUEST, signals.OTHER}
)


@dataclass(frozen=True, slots=True)
class Usage:
    """One account's credits this period (numbers are None when Kiro did not say)."""

    plan: str | None = None
    credits_used: float | None = None
    credits_limit: float | None = None
    bonus_credits: float = 0.0  # trial and bonus grants, apart from the plan's limit
    overage: str | None = None
    resets_at: datetime | None = None
    user_id: str | None = None
    fetched_at: datetime | None = None

    @property
    def share_used(self) -> float | None:
        """Used credits as a share of everything granted (limit plus bonuses), 0..1+."""
        if self.credits_used is None or not self.credits_limit:
            return None
        return self.credits_used / (self.credits_limit + self.bonus_credits)

    def metered(self, credits: float) -> Usage:
        """These numbers with ``credits`` more used (a ``meteringEvent`` between two polls)."""
        if self.credits_used is None:
            return self
        return replace(self, credits_used=round(self.credits_used + credits, 6))

    def as_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "credits_used": self.credits_used,
            "credits_limit": self.credits_limit,
            "bonus_credits": self.bonus_credits,
            "overage": self.overage,
            "resets_at": _iso(self.resets_at),
            "fetched_at": _iso(self.fetched_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        """What :meth:`as_json` wrote (persisted state); unknown or broken fields are dropped."""
        return cls(
            plan=_text(data.get("plan")),
            credits_used=_number(data.get("credits_used")),
            credits_limit=_number(data.get("credits_limit")),
            bonus_credits=_number(data.get("bonus_credits")) or 0.0,
            overage=_text(data.get("overage")),
            resets_at=_time(data.get("resets_at")),
            fetched_at=_time(data.get("fetched_at")),
        )


def parse_usage(answer: Mapping[str, Any], now: datetime | None = None) -> Usage:
    """:class:`Usage` from a usage-limits answer (either flavour)."""
    subscription = _mapping(answer.get("subscriptionInfo"))
    breakdowns = [b for b in _list(answer.get("usageBreakdownList")) if isinstance(b, Mapping)]
    credit = next(
        (b for b in breakdowns if b.get("resourceType") == "CREDIT"), breakdowns[0] if breakdowns else {}
    )
    used = _precise(credit, "currentUsage")
    limit = _precise(credit, "usageLimit")
    bonus_limit = 0.0
    extra_used = 0.0
    grants = [_mapping(b) for b in _list(credit.get("bonuses"))]
    trial = _mapping(credit.get("freeTrialInfo"))
    if trial and str(trial.get("freeTrialStatus", "")).upper() == "ACTIVE":
        grants.append(trial)
    for grant in grants:
        bonus_limit += _precise(grant, "usageLimit") or 0.0
        extra_used += _precise(grant, "currentUsage") or 0.0
    overage = _mapping(answer.get("overageConfiguration")).get("overageStatus") or answer.get("overageStatus")
    resets = _epoch(credit.get("nextDateReset")) or _epoch(answer.get("nextDateReset"))
    user = _mapping(answer.get("userInfo"))
    return Usage(
        plan=_text(subscription.get("subscriptionTitle")),
        credits_used=None if used is None else round(used + extra_used, 6),
        credits_limit=limit,
        bonus_credits=round(bonus_limit, 6),
        overage=_text(overage),
        resets_at=resets,
        user_id=_text(user.get("userId")),
        fetched_at=now or datetime.now(UTC),
    )


async def fetch_usage(
    client: KiroClient, tokens: TokenManager, flavour: UsageFlavour, classified: Classified | None = None
) -> tuple[Usage, UsageFlavour]:
    """The account's usage in ``flavour``, or in the other one when that is refused as the wrong host
    for the login; returns the numbers and the flavour that answered (to remember). Raises the last
    :class:`GatewayError`; ``classified`` hears the signal that ended the last try."""
    order: tuple[UsageFlavour, ...] = (flavour, "management" if flavour == "ide" else "ide")
    if not client.config.management_base_url:
        order = ("ide",)
    for candidate in order[:-1]:
        heard: list[UpstreamSignal] = []
        try:
            return parse_usage(await client.usage_limits(tokens, candidate, heard.append)), candidate
        except GatewayError:
            if heard and heard[-1] not in _FALLBACK_SIGNALS:
                if classified is not None:
                    classified(heard[-1])
                raise
    last = order[-1]
    return parse_usage(await client.usage_limits(tokens, last, classified)), last


def _iso(value: datetime | None) -> str | None:
    return (
        None if value is None else value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _precise(data: Mapping[str, Any], key: str) -> float | None:
    found = _number(data.get(f"{key}WithPrecision"))
    return found if found is not None else _number(data.get(key))


def _epoch(value: object) -> datetime | None:
    seconds = _number(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds > 1e11:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
