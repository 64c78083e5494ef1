"""The classification table of Kiro's error signals: one case per row, and every row covered."""

from __future__ import annotations

import pytest

from kiro_tray.upstream import signals
from kiro_tray.upstream.signals import SIGNALS, UpstreamSignal, classify

#: (status, reason, message) as Kiro sends them -> the row (kiro-protocol.md 4.1, 9.5).
CASES: list[tuple[int, str | None, str, UpstreamSignal]] = [
    (402, None, "You have reached the limit for monthly requests.", signals.QUOTA),
    (429, "MONTHLY_REQUEST_COUNT", "Monthly limit", signals.QUOTA),
    (429, "INSUFFICIENT_MODEL_CAPACITY", "I am experiencing high volume of traffic", signals.CAPACITY),
    (429, None, "Due to suspicious activity, we are imposing temporary limits", signals.RISK),
    (
        429,
        "USER_REQUEST_RATE_EXCEEDED",
        "Too many requests, please wait before trying again.",
        signals.THROTTLED,
    ),
    (403, "TEMPORARILY_SUSPENDED", "Your User ID temporarily is suspended.", signals.SUSPENDED),
    (403, None, "We have locked your account.", signals.SUSPENDED),
    (423, None, "Locked", signals.SUSPENDED),
    (403, None, "The bearer token included in the request is invalid.", signals.BEARER_INVALID),
    (403, None, "User is not authorized to make this call.", signals.NOT_AUTHORIZED),
    (401, None, "Unauthorized", signals.LOGIN_REFUSED),
    (400, "CONTENT_LENGTH_EXCEEDS_THRESHOLD", "Input is too long.", signals.TOO_LONG),
    (400, None, "Improperly formed request.", signals.IMPROPER),
    (400, None, "Invalid model ID or insufficient subscription level to use it", signals.INVALID_MODEL),
    (400, "TOOL_CONFIG_MISSING", "Tool config missing", signals.BAD_REQUEST),
    (500, None, "Internal", signals.TRANSIENT),
    (408, None, "Request Timeout", signals.TRANSIENT),
    (404, None, "Not Found", signals.OTHER),
]


@pytest.mark.parametrize(("status", "reason", "message", "expected"), CASES)
def test_each_answer_gets_its_row(
    status: int, reason: str | None, message: str, expected: UpstreamSignal
) -> None:
    assert classify(status, reason, message) is expected


def test_every_row_has_a_case_and_only_account_faults_fail_over() -> None:
    assert {row for row, _ in SIGNALS} <= {case[3] for case in CASES}
    movers = {row.name for row, _ in SIGNALS if row.failover}
    assert movers == {
        "quota_exhausted",
        "suspicious_activity",
        "throttled",
        "suspended",
        "bearer_invalid",
        "login_refused",
    }
    assert signals.LOGIN_REVOKED.failover and signals.LOGIN_REVOKED.effect == "login_expired"
    for row in (
        signals.CAPACITY,
        signals.TOO_LONG,
        signals.IMPROPER,
        signals.INVALID_MODEL,
        signals.BAD_REQUEST,
    ):
        assert not row.failover and row.effect == "none"
