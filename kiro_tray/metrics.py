"""Gateway metrics: counters, latency percentiles, a per-minute history, JSON and Prometheus text."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .events import RequestEvent, RequestFinished, RequestStarted, ResponseStarted

RESERVOIR = 4096  # latest samples kept per latency series
HISTORY_MINUTES = 60


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _writer(lines: list[str]) -> Callable[[str, str, str, list[tuple[str, float]]], None]:
    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP kiro_tray_{name} {help_text}")
        lines.append(f"# TYPE kiro_tray_{name} {kind}")
        lines.extend(f"kiro_tray_{name}{labels} {value:g}" for labels, value in samples)

    return metric


#: Per-account series: (name, type, help, the row field it shows); ``up`` is derived from the state.
ACCOUNT_SERIES = (
    ("account_credits_used", "gauge", "Kiro credits used this period, by account.", "credits_used"),
    ("account_credits_limit", "gauge", "Kiro credit limit this period, by account.", "credits_limit"),
    ("account_requests_total", "counter", "Requests served, by account.", "requests_total"),
    (
        "account_failovers_total",
        "counter",
        "Requests moved away from the account, by account.",
        "failovers_total",
    ),
)


def account_series(rows: list[dict[str, Any]]) -> str:
    """Prometheus text for each account of the pool (rows as ``/v1/usage`` shows them)."""
    lines: list[str] = []
    metric = _writer(lines)

    def label(row: dict[str, Any]) -> str:
        return f'{{account="{_esc(str(row["name"]))}"}}'

    metric(
        "account_up",
        "gauge",
        "1 when the account can serve now, by account and state.",
        [
            (f'{{account="{_esc(str(r["name"]))}",state="{r["state"]}"}}', float(r["state"] == "available"))
            for r in rows
        ],
    )
    for name, kind, help_text, key in ACCOUNT_SERIES:
        metric(name, kind, help_text, [(label(r), float(r[key])) for r in rows if r.get(key) is not None])
    return "\n".join(lines) + "\n" if lines else ""


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Metrics:
    started_at: float = field(default_factory=time.time)
    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    credits: float = 0.0
    retries: int = 0
    refreshes: int = 0
    refresh_failures: int = 0
    active_streams: int = 0
    in_flight: int = 0
    first_byte_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    total_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    #: (minute since epoch, requests finished in it), newest last.
    per_minute: deque[list[int]] = field(default_factory=lambda: deque(maxlen=HISTORY_MINUTES))
    today: date = field(default_factory=date.today)
    requests_today: int = 0
    errors_today: int = 0

    def on_event(self, event: RequestEvent) -> None:
        """Counters follow the request events of API routes (info routes are not counted)."""
        if isinstance(event, ResponseStarted):
            self.active_streams += 1
        elif event.api == "info":
            return
        elif isinstance(event, RequestStarted):
            self.in_flight += 1
        else:
            self._finished(event)

    def _finished(self, event: RequestFinished) -> None:
        out = event.outcome
        self.in_flight -= 1
        if out.streamed:
            self.active_streams -= 1
        self.requests += 1
        self.by_endpoint[event.route] += 1
        if out.model:
            self.by_model[out.model] += 1
        status = event.status
        self.by_status[status] += 1
        failed = status >= 400 or out.error_kind is not None
        if failed:
            self.errors_by_kind[out.error_kind or f"http_{status}"] += 1
        if out.first_byte_ms is not None:
            self.first_byte_ms.append(out.first_byte_ms)
        self.total_ms.append(event.total_ms)
        self.input_tokens += out.input_tokens or 0
        self.output_tokens += out.output_tokens or 0
        self.credits += out.credits or 0.0
        self.retries += out.retries
        self._count_minute(failed)

    def _count_minute(self, failed: bool) -> None:
        now = time.time()
        minute = int(now // 60)
        if self.per_minute and self.per_minute[-1][0] == minute:
            self.per_minute[-1][1] += 1
        else:
            self.per_minute.append([minute, 1])
        day = date.fromtimestamp(now)
        if day != self.today:
            self.today, self.requests_today, self.errors_today = day, 0, 0
        self.requests_today += 1
        self.errors_today += failed

    def requests_per_minute(self, now: float | None = None) -> list[int]:
        """Counts for each of the last 60 minutes, oldest first (zeros where idle)."""
        current = int((now or time.time()) // 60)
        counts = dict((m, c) for m, c in self.per_minute)
        return [counts.get(current - offset, 0) for offset in range(HISTORY_MINUTES - 1, -1, -1)]

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    def latency(self, series: deque[float]) -> dict[str, float | None]:
        samples = list(series)
        return {f"p{q}": percentile(samples, q) for q in (50, 95, 99)}

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime_s": round(time.time() - self.started_at, 3),
            "requests_total": self.requests,
            "requests_today": self.requests_today,
            "requests_by_endpoint": dict(self.by_endpoint),
            "requests_by_model": dict(self.by_model),
            "requests_by_status": {str(k): v for k, v in self.by_status.items()},
            "errors_total": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "latency_ms": {
                "first_byte": self.latency(self.first_byte_ms),
                "total": self.latency(self.total_ms),
            },
            "tokens": {"input": self.input_tokens, "output": self.output_tokens, "estimated": True},
            "credits": round(self.credits, 6),
            "retries": self.retries,
            "token_refreshes": self.refreshes,
            "token_refresh_failures": self.refresh_failures,
            "active_streams": self.active_streams,
            "in_flight": self.in_flight,
            "requests_per_minute": self.requests_per_minute(),
        }

    def prometheus(self) -> str:
        lines: list[str] = []
        metric = _writer(lines)

        metric(
            "requests_total",
            "counter",
            "Requests finished, by endpoint.",
            [(f'{{endpoint="{_esc(k)}"}}', v) for k, v in sorted(self.by_endpoint.items())] or [("", 0)],
        )
        metric(
            "requests_by_model_total",
            "counter",
            "Requests finished, by model.",
            [(f'{{model="{_esc(k)}"}}', v) for k, v in sorted(self.by_model.items())],
        )
        metric(
            "responses_total",
            "counter",
            "Responses, by HTTP status.",
            [(f'{{status="{k}"}}', v) for k, v in sorted(self.by_status.items())],
        )
        metric(
            "errors_total",
            "counter",
            "Errors, by kind.",
            [(f'{{kind="{_esc(k)}"}}', v) for k, v in sorted(self.errors_by_kind.items())],
        )
        for series_name, series in (("first_byte", self.first_byte_ms), ("total", self.total_ms)):
            values = self.latency(series)
            metric(
                f"{series_name}_latency_ms",
                "gauge",
                f"{series_name} latency percentiles (recent window).",
                [(f'{{quantile="0.{q[1:]}"}}', v) for q, v in values.items() if v is not None],
            )
        metric("input_tokens_total", "counter", "Estimated input tokens.", [("", self.input_tokens)])
        metric("output_tokens_total", "counter", "Estimated output tokens.", [("", self.output_tokens)])
        metric("credits_total", "counter", "Kiro credits charged.", [("", self.credits)])
        metric("retries_total", "counter", "Upstream attempts retried.", [("", self.retries)])
        metric("token_refreshes_total", "counter", "Access token refreshes.", [("", self.refreshes)])
        metric("active_streams", "gauge", "Streams in flight.", [("", self.active_streams)])
        return "\n".join(lines) + "\n"
