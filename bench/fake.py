"""The benchmark's upstream: ``python -m bench.fake --port N``, the project's fake Kiro in its own process.

The refresh token of its one account comes from the ``BENCH_REFRESH_TOKEN`` environment variable (so it
is not on a command line) and does not rotate, so the gateway and the benchmark's direct requests can
both refresh with it. The reply shape (:class:`Shape`) is read from a directive in the prompt,
``[[bench chunks=200 interval=0 burst=0]]``: that many text chunks (the last one carries
:data:`END_MARK`), ``interval`` seconds apart, then the context-usage and metering events real Kiro ends
with. With ``interval=0`` each chunk is still its own write, after a turn of the event loop, as from an
upstream that streams; ``burst=1`` writes the whole reply at once instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
from dataclasses import dataclass
from typing import Any

from tests.fake_kiro.replies import ContextUsage, Delay, Metering, Reply, Step, Text
from tests.fake_kiro.server import FakeKiro, ReceivedRequest

END_MARK = "END-OF-BENCH-STREAM"
CHUNK_TEXT = "Benchmark chunk {i:03d}: a sentence of ordinary model prose. "
DIRECTIVE = re.compile(r"\[\[bench chunks=(\d+) interval=([0-9.]+) burst=([01])\]\]")
KEEP_REQUESTS = 1000


@dataclass(frozen=True, slots=True)
class Shape:
    """What the fake streams back: ``chunks`` text chunks ``interval`` seconds apart, or all at once."""

    chunks: int
    interval: float = 0.0
    burst: bool = False

    @property
    def directive(self) -> str:
        return f"[[bench chunks={self.chunks} interval={self.interval:g} burst={int(self.burst)}]]"

    @classmethod
    def from_prompt(cls, prompt: str) -> Shape:
        found = DIRECTIVE.search(prompt)
        if found is None:
            return cls(1)
        return cls(int(found.group(1)), float(found.group(2)), found.group(3) == "1")

    def reply(self) -> Reply:
        steps: list[Step] = []
        for i in range(self.chunks):
            if i and not self.burst:
                steps.append(Delay(self.interval))
            last = i == self.chunks - 1
            steps.append(Text(CHUNK_TEXT.format(i=i) + (END_MARK if last else "")))
        steps += [ContextUsage(12.5), Metering(0.02)]
        return Reply(steps)


class BenchResponder:
    """Builds (once per shape) the reply a directive asks for.

    It also keeps the fake's request log short: the log is for tests, and over a benchmark's tens of
    thousands of requests it would grow the fake's memory and garbage-collection work without bound.
    """

    def __init__(self, request_log: list[ReceivedRequest]) -> None:
        self._replies: dict[Shape, Reply] = {}
        self._request_log = request_log

    def __call__(self, body: dict[str, Any]) -> Reply:
        if len(self._request_log) > KEEP_REQUESTS:
            self._request_log.clear()
        content = (
            body.get("conversationState", {})
            .get("currentMessage", {})
            .get("userInputMessage", {})
            .get("content", "")
        )
        shape = Shape.from_prompt(content if isinstance(content, str) else "")
        reply = self._replies.get(shape)
        if reply is None:
            reply = self._replies[shape] = shape.reply()
        return reply


async def serve(port: int, refresh_token: str) -> None:
    fake = FakeKiro()
    fake.add_account(refresh_token, rotate=False)
    fake.responder = BenchResponder(fake.requests)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = await fake.start(port=port)
    print(f"bench fake Kiro listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    token = os.environ.get("BENCH_REFRESH_TOKEN")
    if not token:
        parser.error("set BENCH_REFRESH_TOKEN")
    asyncio.run(serve(args.port, token))


if __name__ == "__main__":
    main()
