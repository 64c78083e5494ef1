"""``python -m bench.profile [--api openai|anthropic] [--concurrency 64] [--seconds 15] [--out DIR]``.

Starts the fake and the gateway as :mod:`bench.run` does, drives streamed requests at the given
concurrency, and samples the gateway process with ``py-spy record --format raw --nonblocking`` meanwhile
(``pip install py-spy``). Prints where the gateway's busy time goes: by area (our protocol code, aiohttp,
asyncio, json, logging, ...), by function including callees, and by line. The raw collapsed stacks stay in
``DIR`` for speedscope or ``flamegraph.pl``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from .fake import Shape
from .load import Target
from .stack import Stack, client_session

TOP = 25
RATE = 250
#: Areas by path fragment, most specific first; the rest is "other".
AREAS = (
    ("kiro_tray/protocol/", "kiro_tray.protocol"),
    ("kiro_tray/gateway/", "kiro_tray.gateway"),
    ("kiro_tray/upstream/", "kiro_tray.upstream"),
    ("kiro_tray/", "kiro_tray (other)"),
    ("aiohttp/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("asyncio/", "asyncio"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("pydantic", "pydantic"),
)


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    by_line: Counter[str]  # self samples per "function (file:line)"
    by_function: Counter[str]  # samples with the function anywhere on the stack
    by_area: Counter[str]  # self samples per area


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (path/file.py)``."""
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rpartition(':')[0]})" if where else frame


def _area(frame: str) -> str:
    return next((area for fragment, area in AREAS if fragment in frame), "other")


def parse_collapsed(text: str) -> Profile:
    """py-spy's raw output: one ``frame;frame;...;leaf count`` line per distinct stack."""
    by_line: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        by_line[frames[-1]] += count
        by_area[_area(frames[-1])] += count
        for function in {_function(f) for f in frames}:
            by_function[function] += count
    return Profile(samples, by_line, by_function, by_area)


def render_profile(profile: Profile, title: str) -> str:
    total = profile.samples or 1
    lines = [f"{title}: {profile.samples} busy samples at {RATE} Hz", "", "Self time by area:"]
    lines += [f"  {100 * n / total:5.1f}%  {area}" for area, n in profile.by_area.most_common()]
    lines += ["", f"Inclusive time, top {TOP} functions:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in profile.by_function.most_common(TOP)]
    lines += ["", f"Self time, top {TOP} lines:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in profile.by_line.most_common(TOP)]
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("bench.profile needs py-spy: pip install py-spy")
    return found


async def profile(api: Target, concurrency: int, seconds: float, chunks: int, out: Path) -> str:
    py_spy = _py_spy()
    raw = out / f"profile-{api}-{concurrency}.txt"
    with tempfile.TemporaryDirectory(prefix="kiro-tray-profile-") as workdir:
        stack = Stack(Path(workdir))
        async with (
            client_session() as session,
            stack.fake_running(session) as fake,
            stack.running(session, fake) as up,
        ):
            shape = Shape(chunks)
            await up.load.many(api, shape, concurrency * 2, concurrency)  # warm up
            spy = await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(up.gateway.pid),
                "--duration",
                str(round(seconds)),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            batch = await up.load.many(api, shape, 10**9, concurrency, seconds=seconds + 1)
            _, spy_err = await spy.communicate()
    if spy.returncode != 0:
        raise SystemExit(f"py-spy failed: {spy_err.decode(errors='replace')[-500:]}")
    ok = len(batch.ok)
    title = (
        f"gateway, {api} at {concurrency} concurrent, {chunks} chunks: {ok / batch.seconds:.1f} req/s,"
        f" {batch.errors} errors"
    )
    return render_profile(parse_collapsed(raw.read_text()), title) + f"\n\nraw stacks: {raw}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=[t for t in get_args(Target) if t != "direct"], default="openai")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(asyncio.run(profile(args.api, args.concurrency, args.seconds, args.chunks, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
