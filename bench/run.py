"""``python -m bench.run [--quick] [--json FILE] [--compare OLD.json]``: the whole benchmark, one command.

Starts the fake Kiro (:mod:`bench.fake`) and the gateway (``python -m kiro_tray --headless``) as separate
processes on loopback, then measures, for the OpenAI and the Anthropic format: added latency (through
the gateway minus straight to the fake, one stream at a time), throughput at 1/16/64/256 concurrent
streams, the gateway's CPU seconds per 1,000 streams and peak RSS, memory with many slow streams open, and
headless and GUI cold start. Prints a table; ``--json`` writes the results; ``--compare`` prints ratios
against an earlier JSON. Every loop is bounded; nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .fake import Shape
from .load import TARGETS, Batch, LoadGenerator
from .procs import Child, ProcessFailed, free_port, wait_until_answering
from .report import Results, compare, percentiles_ms, render
from .stack import REPO, START_TIMEOUT, Stack, client_session

SAMPLE_INTERVAL = 0.1
SLOW_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Sizes:
    quick: bool
    chunks: int
    warmup_rounds: int
    latency_rounds: int
    levels: tuple[int, ...]
    min_requests: int  # per throughput level, at least this many requests ...
    requests_per_stream_slot: int  # ... and at least this many per concurrent stream
    slow_streams: int
    slow_chunks: int
    headless_runs: int
    gui_runs: int

    def requests_at(self, concurrency: int) -> int:
        return max(self.min_requests, self.requests_per_stream_slot * concurrency)


FULL = Sizes(
    quick=False,
    chunks=200,
    warmup_rounds=40,
    latency_rounds=400,
    levels=(1, 16, 64, 256),
    min_requests=600,
    requests_per_stream_slot=4,
    slow_streams=1000,
    slow_chunks=10,
    headless_runs=5,
    gui_runs=3,
)
QUICK = Sizes(
    quick=True,
    chunks=20,
    warmup_rounds=3,
    latency_rounds=10,
    levels=(1, 16, 64, 256),
    min_requests=8,
    requests_per_stream_slot=1,
    slow_streams=40,
    slow_chunks=3,
    headless_runs=1,
    gui_runs=1,
)


class Bench:
    """One run: the phases in order, against one :class:`Stack`."""

    def __init__(self, sizes: Sizes, workdir: Path, *, burst: bool = False) -> None:
        self.sizes = sizes
        self.shape = Shape(sizes.chunks, burst=burst)
        self.stack = Stack(workdir)
        self.error_samples: list[str] = []

    async def run(self) -> Results:
        results: Results = {"meta": _meta(), "sizes": {**asdict(self.sizes), "burst": self.shape.burst}}
        async with client_session() as session, self.stack.fake_running(session) as fake:
            async with self.stack.running(session, fake) as up:
                _progress("latency")
                results["latency"] = await self.latency(up.load)
                _progress("throughput")
                results["throughput"] = await self.throughput(up.load, up.gateway, fake)
                _progress("slow streams")
                results["slow_streams"] = await self.slow_streams(up.load, up.gateway)
            _progress("cold start")
            results["cold_start"] = {
                "headless": await self.cold_start(session, gui=False),
                "gui": await self.cold_start(session, gui=True),
            }
        results["meta"]["load_average_end"] = round(os.getloadavg()[0], 2)
        results["error_samples"] = self.error_samples
        results["errors"] = _count_errors(results)
        return results

    def _note(self, batch: Batch) -> None:
        for error in batch.error_samples:
            if error not in self.error_samples and len(self.error_samples) < 20:
                self.error_samples.append(error)

    # ---- phases ------------------------------------------------------------------------------------

    async def latency(self, load: LoadGenerator) -> dict[str, Any]:
        s = self.sizes
        warm = await load.interleaved(TARGETS, self.shape, s.warmup_rounds)
        for batch in warm.values():
            self._note(batch)
        batches = await load.interleaved(TARGETS, self.shape, s.latency_rounds)
        out: dict[str, Any] = {}
        for target, batch in batches.items():
            self._note(batch)
            ok = batch.ok
            out[target] = {
                "samples": len(batch.samples),
                "errors": batch.errors,
                "first_byte_ms": percentiles_ms([x.first_byte for x in ok]),
                "total_ms": percentiles_ms([x.total for x in ok]),
            }
        direct = out["direct"]
        for api in ("openai", "anthropic"):
            for what in ("first_byte", "total"):
                mine = out[api][f"{what}_ms"]
                out[api][f"added_{what}_ms"] = {
                    p: round(mine[p] - direct[f"{what}_ms"][p], 3) for p in ("p50", "p99")
                }
        return out

    async def throughput(self, load: LoadGenerator, gateway: Child, fake: Child) -> dict[str, Any]:
        s = self.sizes
        out: dict[str, Any] = {target: {} for target in TARGETS}
        for level in s.levels:
            for target in TARGETS:
                requests = s.requests_at(level)
                gateway.reset_peak()
                before = (gateway.cpu_seconds(), fake.cpu_seconds(), _own_cpu())
                batch = await load.many(target, self.shape, requests, level)
                after = (gateway.cpu_seconds(), fake.cpu_seconds(), _own_cpu())
                self._note(batch)
                ok = batch.ok
                row: dict[str, Any] = {
                    "requests": requests,
                    "seconds": round(batch.seconds, 3),
                    "requests_per_s": round(len(ok) / batch.seconds, 2),
                    "chunks_per_s": round(len(ok) * s.chunks / batch.seconds, 1),
                    "errors": batch.errors,
                    "events_per_stream": _mean([x.events for x in ok]),
                    "writes_per_stream": _mean([x.writes for x in ok]),
                    "fake_cpu_s": round(after[1] - before[1], 3),
                    "client_cpu_s": round(after[2] - before[2], 3),
                }
                if target != "direct":
                    cpu = after[0] - before[0]
                    row["gateway_cpu_s"] = round(cpu, 3)
                    row["gateway_cpu_s_per_1k"] = round(cpu * 1000 / requests, 3)
                    row["gateway_peak_rss_mb"] = round(gateway.peak_rss_mb(), 1)
                out[target][str(level)] = row
                gateway.check_alive()
        return out

    async def slow_streams(self, load: LoadGenerator, gateway: Child) -> dict[str, Any]:
        """Half OpenAI, half Anthropic streams, all open at once, upstream pacing one chunk a second."""
        s = self.sizes
        half = s.slow_streams // 2
        rss_before = gateway.rss_mb()
        gateway.reset_peak()
        start = time.perf_counter()
        all_open_after: float | None = None
        max_open = 0
        shape = Shape(s.slow_chunks, SLOW_INTERVAL)
        batches = [asyncio.create_task(load.many(api, shape, half, half)) for api in ("openai", "anthropic")]
        pending: set[asyncio.Task[Batch]] = set(batches)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=SAMPLE_INTERVAL)
            max_open = max(max_open, load.streaming)
            if all_open_after is None and load.streaming >= 2 * half:
                all_open_after = round(time.perf_counter() - start, 3)
        seconds = time.perf_counter() - start
        peak = gateway.peak_rss_mb()
        done = [task.result() for task in batches]
        for batch in done:
            self._note(batch)
        return {
            "streams": 2 * half,
            "chunks_per_stream": s.slow_chunks,
            "interval_s": SLOW_INTERVAL,
            "seconds": round(seconds, 3),
            "all_open_after_s": all_open_after,
            "max_open": max_open,
            "errors": sum(b.errors for b in done),
            "gateway_rss_before_mb": round(rss_before, 1),
            "gateway_peak_rss_mb": round(peak, 1),
            "gateway_kb_per_stream": round((peak - rss_before) * 1024 / (2 * half), 1),
        }

    async def cold_start(self, session: aiohttp.ClientSession, *, gui: bool) -> dict[str, Any]:
        runs = self.sizes.gui_runs if gui else self.sizes.headless_runs
        if gui and importlib.util.find_spec("PySide6") is None:
            return {"skipped": "PySide6 is not installed"}
        times: list[float] = []
        rss: list[float] = []
        for i in range(runs):
            port = free_port()
            child = self.stack.spawn_gateway(f"{'gui' if gui else 'headless'}-{i}", port, gui=gui)
            try:
                times.append(
                    await wait_until_answering(
                        session, child, f"http://127.0.0.1:{port}/health", START_TIMEOUT
                    )
                )
                rss.append(child.rss_mb())
            except ProcessFailed as exc:
                if not gui:
                    raise
                return {"skipped": f"the GUI did not start: {str(exc)[:300]}"}
            finally:
                await asyncio.to_thread(child.stop)
        result: dict[str, Any] = {
            "runs": runs,
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
            "rss_mb": round(statistics.median(rss), 1),
        }
        if gui:
            # The UI has no "tray shown" hook and offscreen Qt has no system tray: the gateway started by
            # the GUI process answering /health is the nearest observable point (it follows the window).
            result["measured_to"] = "first /health of the GUI process"
        return result


def _progress(phase: str) -> None:
    print(f"bench: {phase} ...", file=sys.stderr, flush=True)


def _mean(values: list[int]) -> float:
    return round(statistics.fmean(values), 2) if values else 0.0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _count_errors(results: Results) -> int:
    total: int = sum(row["errors"] for row in results["latency"].values())
    total += sum(row["errors"] for levels in results["throughput"].values() for row in levels.values())
    return total + int(results["slow_streams"]["errors"])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _meta() -> dict[str, Any]:
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "commit": _commit(),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        # Other work on the machine skews every figure: the 1-minute load average before and after.
        "load_average_start": round(os.getloadavg()[0], 2),
    }


def _raise_fd_limit() -> None:
    """1,000 slow streams need ~3,000 descriptors across the processes; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (CI smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--compare", type=Path, help="an earlier results JSON to print ratios against")
    parser.add_argument(
        "--burst",
        action="store_true",
        help="the fake writes each reply at once (default: one write per chunk, as a streaming upstream)",
    )
    args = parser.parse_args(argv)
    old = json.loads(args.compare.read_text()) if args.compare else None
    _raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="kiro-tray-bench-") as workdir:
        try:
            bench = Bench(QUICK if args.quick else FULL, Path(workdir), burst=args.burst)
            results = asyncio.run(bench.run())
        except ProcessFailed as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    print(render(results))
    if old is not None:
        print()
        print(compare(results, old))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
