"""The words every place of the app uses for an account: its plan, credits, state and when things happen.

The tray's first lines, its Accounts submenu and the window's Accounts page all say the same, e.g.
``work · Pro · 312 of 1,000 credits · resets 1 Jan`` or ``home · cooling down until 14:05``.
"""

from __future__ import annotations

import time
from datetime import datetime

from ..gateway.account_health import AccountState
from ..gateway.accounts import AccountView
from ..upstream.usage import Usage

SEPARATOR = " · "
STATE_WORDS: dict[AccountState, str] = {
    "available": "available",
    "cooling": "cooling down",
    "quota_exhausted": "credits used up",
    "suspended": "suspended by Kiro",
    "login_expired": "needs a new login",
    "disabled": "disabled",
}
STRATEGY_WORDS = {"sticky": "Sticky", "round-robin": "Round-robin", "least-used": "Least used"}
DAY_SECONDS = 86_400.0


def plan_name(plan: str | None) -> str | None:
    """``KIRO PRO`` -> ``Pro``; ``KIRO FREE`` -> ``Free``."""
    if not plan:
        return None
    words = plan.split()
    if len(words) > 1 and words[0].upper() == "KIRO":
        words = words[1:]
    return " ".join(w.capitalize() if w.isupper() else w for w in words)


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.2f}"


def used_of(usage: Usage) -> str | None:
    """``312 of 1,000`` (None while the quota is not known)."""
    if usage.credits_used is None or usage.credits_limit is None:
        return None
    return f"{number(usage.credits_used)} of {number(usage.credits_limit)}"


def credits(usage: Usage) -> str | None:
    """``312 of 1,000 credits`` (``+ 50 bonus`` when the account has a bonus grant)."""
    used = used_of(usage)
    if used is None:
        return None
    bonus = f" + {number(usage.bonus_credits)} bonus" if usage.bonus_credits else ""
    return f"{used} credits{bonus}"


def day(moment: datetime) -> str:
    """``1 Jan``: local date, no leading zero."""
    local = moment.astimezone()
    return f"{local.day} {local:%b}"


def when(epoch: float, now: float | None = None) -> str:
    """``14:05`` today or within a day, else ``3 Feb``."""
    moment = datetime.fromtimestamp(epoch).astimezone()
    if abs(epoch - (now or time.time())) < DAY_SECONDS:
        return f"{moment:%H:%M}"
    return day(moment)


def ago(epoch: float | None, now: float | None = None) -> str:
    """``never``, ``just now``, ``5 min ago``, ``3 h ago``, ``2 days ago``."""
    if epoch is None:
        return "never"
    seconds = max(0.0, (now or time.time()) - epoch)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < DAY_SECONDS:
        return f"{seconds // 3600:.0f} h ago"
    days = int(seconds // DAY_SECONDS)
    return f"{days} day{'' if days == 1 else 's'} ago"


def state(view: AccountView) -> str:
    """``available``, ``cooling down until 14:05``, ``suspended by Kiro``."""
    words = STATE_WORDS[view.state]
    return f"{words} until {when(view.until)}" if view.until is not None else words


def quota(view: AccountView) -> list[str]:
    """Plan, credits and reset date, as far as they are known."""
    usage = view.usage
    parts = [plan_name(usage.plan), credits(usage)]
    if usage.resets_at is not None:
        parts.append(f"resets {day(usage.resets_at)}")
    return [p for p in parts if p]


def headline(view: AccountView) -> str:
    """The tray's line for the active account: its quota, or its state when it cannot serve."""
    parts = [view.name]
    if view.state != "available":
        parts.append(state(view))
    parts += quota(view)
    return SEPARATOR.join(parts) if len(parts) > 1 else f"Account: {view.name}"


def menu_entry(view: AccountView) -> str:
    """An account in the tray's Accounts submenu: name, state, credits."""
    parts = [view.name, state(view), used_of(view.usage)]
    return SEPARATOR.join(p for p in parts if p)
