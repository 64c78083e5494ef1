"""Turning a results dict (the JSON the run writes) into a table, target checks and a comparison."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import Any

Results = dict[str, Any]
GATEWAY_TARGETS = ("openai", "anthropic")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"p50": float("nan"), "p99": float("nan")}
    if len(seconds) == 1:
        return {"p50": seconds[0] * 1000, "p99": seconds[0] * 1000}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": round(cuts[49] * 1000, 3), "p99": round(cuts[98] * 1000, 3)}


def headline(results: Results) -> dict[str, float | None]:
    """The figures issue 6 names, flat, for the target checks and ``--compare``."""
    figures: dict[str, float | None] = {}
    latency = results["latency"]
    for api in GATEWAY_TARGETS:
        for what in ("first_byte", "total"):
            for p in ("p50", "p99"):
                figures[f"{api} added {what} {p} ms"] = latency[api][f"added_{what}_ms"][p]
    for target, levels in results["throughput"].items():
        for level, row in levels.items():
            figures[f"{target} req/s @{level}"] = row["requests_per_s"]
    for api in GATEWAY_TARGETS:
        figures[f"{api} gateway CPU s/1k @64"] = results["throughput"][api]["64"]["gateway_cpu_s_per_1k"]
    figures["gateway peak RSS MB @256"] = max(
        results["throughput"][api]["256"]["gateway_peak_rss_mb"] for api in GATEWAY_TARGETS
    )
    figures["gateway peak RSS MB, slow streams"] = results["slow_streams"]["gateway_peak_rss_mb"]
    cold = results["cold_start"]
    figures["headless cold start s"] = cold["headless"]["median_s"]
    figures["GUI cold start s"] = cold["gui"].get("median_s")
    return figures


# (figure, limit, what it is): the targets of issue 6, reported, never enforced.
TARGETS: tuple[tuple[str, float, str], ...] = (
    ("openai added first_byte p50 ms", 1.0, "added first byte p50 <= 1 ms"),
    ("anthropic added first_byte p50 ms", 1.0, "added first byte p50 <= 1 ms"),
    ("openai added first_byte p99 ms", 3.0, "added first byte p99 <= 3 ms"),
    ("anthropic added first_byte p99 ms", 3.0, "added first byte p99 <= 3 ms"),
    ("openai gateway CPU s/1k @64", 2.0, "CPU <= 2 s per 1,000 streams"),
    ("anthropic gateway CPU s/1k @64", 2.0, "CPU <= 2 s per 1,000 streams"),
    ("gateway peak RSS MB @256", 120.0, "peak RSS <= 120 MB at 256 concurrent"),
    ("gateway peak RSS MB, slow streams", 150.0, "peak RSS <= 150 MB, 1,000 slow streams"),
    ("headless cold start s", 0.5, "headless cold start < 0.5 s"),
    ("GUI cold start s", 1.5, "GUI cold start < 1.5 s"),
)
MIN_RPS_AT_64 = 430.0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pair(d: dict[str, float], sign: bool = False) -> str:
    form = "{:+.2f}" if sign else "{:.2f}"
    return f"{form.format(d['p50'])} / {form.format(d['p99'])}"


def render(results: Results) -> str:
    meta, sizes = results["meta"], results["sizes"]
    lines = [
        f"Kiro Tray benchmark ({'quick' if sizes['quick'] else 'full'}), {meta['when']}",
        f"  {meta['cpus']} CPUs ({meta['cpu_model']}), Python {meta['python']}, commit {meta['commit']},"
        f" load average {meta['load_average_start']} before, {meta['load_average_end']} after",
        f"  streams of {sizes['chunks']} text chunks, written upstream "
        + ("all at once (--burst)" if sizes.get("burst") else "one write per chunk"),
        "  the load generator, the fake and the gateway share the machine",
        "",
        f"Latency, one stream at a time ({sizes['latency_rounds']} rounds)   first byte p50 / p99 ms"
        "      total p50 / p99 ms",
    ]
    latency = results["latency"]
    for target in ("direct", *GATEWAY_TARGETS):
        row = latency[target]
        lines.append(
            f"  {target:<10} {_pair(row['first_byte_ms']):>26} {_pair(row['total_ms']):>26}"
            f"   errors {row['errors']}"
        )
        if target in GATEWAY_TARGETS:
            lines.append(
                f"  {'  added':<10} {_pair(row['added_first_byte_ms'], True):>26}"
                f" {_pair(row['added_total_ms'], True):>26}"
            )
    lines += [
        "",
        "Throughput        conc  requests    req/s   chunks/s  errors  events/stream  writes/stream"
        "  gw CPU s/1k  gw peak MB  fake CPU s  client CPU s",
    ]
    for target, levels in results["throughput"].items():
        for level, row in levels.items():
            lines.append(
                f"  {target:<14} {level:>5} {row['requests']:>9} {_fmt(row['requests_per_s'], 1):>8}"
                f" {_fmt(row['chunks_per_s'], 0):>10} {row['errors']:>7}"
                f" {_fmt(row['events_per_stream'], 1):>14} {_fmt(row['writes_per_stream'], 1):>14}"
                f" {_fmt(row.get('gateway_cpu_s_per_1k')):>12} {_fmt(row.get('gateway_peak_rss_mb'), 1):>11}"
                f" {_fmt(row['fake_cpu_s']):>11} {_fmt(row['client_cpu_s']):>13}"
            )
    slow = results["slow_streams"]
    lines += [
        "",
        f"Slow streams: {slow['streams']} concurrent, {slow['chunks_per_stream']} chunks"
        f" {slow['interval_s']:g} s apart: all open after {_fmt(slow['all_open_after_s'])} s"
        f" (max open {slow['max_open']}), errors {slow['errors']}",
        f"  gateway RSS {_fmt(slow['gateway_rss_before_mb'], 1)} MB before,"
        f" peak {_fmt(slow['gateway_peak_rss_mb'], 1)} MB"
        f" ({_fmt(slow['gateway_kb_per_stream'], 1)} KB per open stream)",
    ]
    cold = results["cold_start"]
    head, gui = cold["headless"], cold["gui"]
    lines += [
        "",
        f"Cold start, headless, spawn to first /health: median {_fmt(head['median_s'], 3)} s"
        f" (min {_fmt(head['min_s'], 3)}, {head['runs']} runs), RSS {_fmt(head['rss_mb'], 1)} MB",
    ]
    if "median_s" in gui:
        lines.append(
            f"Cold start, GUI offscreen, spawn to {gui['measured_to']}: median {_fmt(gui['median_s'], 3)} s"
            f" (min {_fmt(gui['min_s'], 3)}, {gui['runs']} runs), RSS {_fmt(gui['rss_mb'], 1)} MB"
        )
    else:
        lines.append(f"Cold start, GUI: skipped ({gui['skipped']})")
    lines += ["", *render_targets(results)]
    if results["error_samples"]:
        lines += ["", "Errors seen:", *(f"  {e}" for e in results["error_samples"])]
    return "\n".join(lines)


def render_targets(results: Results) -> list[str]:
    figures = headline(results)
    lines = ["Targets of issue 6 (reported, not enforced):"]
    for name, limit, text in TARGETS:
        value = figures[name]
        verdict = "n/a" if value is None else ("met" if value <= limit else "NOT met")
        lines.append(f"  {verdict:<8} {text:<42} {name}: {_fmt(value)}")
    fake_rps = figures["direct req/s @64"] or 0.0
    for api in GATEWAY_TARGETS:
        rps = figures[f"{api} req/s @64"] or 0.0
        met = rps >= MIN_RPS_AT_64 or rps >= 0.9 * fake_rps
        lines.append(
            f"  {'met' if met else 'NOT met':<8} {'>= 430 req/s @64 (or 90% of the fake)':<42}"
            f" {api} req/s @64: {rps:,.1f} (fake alone {fake_rps:,.1f})"
        )
    return lines


def compare(new: Results, old: Results) -> str:
    """New against old, figure by figure: ratio new/old (for latency, CPU and memory lower is better)."""
    new_figures, old_figures = headline(new), headline(old)
    lines = [f"Compared with the run of {old['meta']['when']} (ratio = new / old):"]
    if json.dumps(new["sizes"], sort_keys=True) != json.dumps(old["sizes"], sort_keys=True):
        lines.append("  WARNING: the two runs used different sizes; their figures are not comparable.")
    for name, value in new_figures.items():
        before = old_figures.get(name)
        if value is None or before is None:
            lines.append(f"  {name:<38} {_fmt(before):>10} -> {_fmt(value):>10}")
            continue
        ratio = f"{value / before:.2f}x" if before else "-"
        lines.append(f"  {name:<38} {_fmt(before):>10} -> {_fmt(value):>10}  {ratio}")
    return "\n".join(lines)
