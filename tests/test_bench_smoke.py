"""The benchmark suite cannot rot: ``python -m bench.run --quick`` runs and reports every figure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.report import TARGETS, compare, headline

REPO = Path(__file__).resolve().parent.parent
LEVELS = ("1", "16", "64", "256")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())

    assert results["errors"] == 0, results["error_samples"]
    assert results["error_samples"] == []
    for target in ("direct", "openai", "anthropic"):
        latency = results["latency"][target]
        assert latency["samples"] == results["sizes"]["latency_rounds"]
        for figure in ("first_byte_ms", "total_ms"):
            assert latency[figure]["p50"] > 0 and latency[figure]["p99"] >= latency[figure]["p50"]
        assert set(results["throughput"][target]) == set(LEVELS)
        for row in results["throughput"][target].values():
            assert row["errors"] == 0 and row["requests_per_s"] > 0 and row["chunks_per_s"] > 0
    for api in ("openai", "anthropic"):
        for figure in ("added_first_byte_ms", "added_total_ms"):
            assert _number(results["latency"][api][figure]["p50"])
            assert _number(results["latency"][api][figure]["p99"])
        for row in results["throughput"][api].values():
            # CPU time comes in 10 ms ticks: a tiny level may read 0.
            assert row["gateway_cpu_s_per_1k"] >= 0 and row["gateway_peak_rss_mb"] > 0
            assert row["events_per_stream"] >= 1

    slow = results["slow_streams"]
    assert slow["errors"] == 0 and slow["max_open"] == slow["streams"]
    assert slow["gateway_peak_rss_mb"] >= slow["gateway_rss_before_mb"] > 0

    cold = results["cold_start"]
    assert 0 < cold["headless"]["median_s"] < 30
    gui = cold["gui"]
    assert ("median_s" in gui and 0 < gui["median_s"] < 30) or gui["skipped"]

    figures = headline(results)
    for name, _limit, _text in TARGETS:
        assert name in figures
    assert all(_number(v) for name, v in figures.items() if name != "GUI cold start s")
    assert "Targets of issue 6" in done.stdout and "Throughput" in done.stdout
    assert "1.00x" in compare(results, results)
