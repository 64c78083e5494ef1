"""Run the fake Kiro standalone, to try Kiro Tray without a Kiro account or to benchmark it.

    python -m tests.fake_kiro [--host 127.0.0.1] [--port 8900] [--latency-ms 0] [--chunks 3]

It serves one social account whose refresh token is :data:`DEMO_REFRESH_TOKEN` (it does not rotate, so
the same token works after restarting Kiro Tray) and answers with the smart responder: an echo,
``[[tool:NAME {json}]]`` directives turned into tool calls, tool results acknowledged, thinking when the
client asks for it. Point Kiro Tray at it with the environment variables it prints. Ctrl-C or
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from typing import Any

from .replies import Delay, Reply, smart_reply
from .server import FakeKiro

#: The demo account's refresh token: a fixed, public value that only this fake accepts.
DEMO_REFRESH_TOKEN = "kiro-tray-demo-refresh-token-for-the-fake-kiro-only"


def demo_responder(latency: float, chunks: int) -> Callable[[dict[str, Any]], Reply]:
    """The smart responder with ``chunks`` text chunks and ``latency`` seconds before the first byte."""

    def respond(body: dict[str, Any]) -> Reply:
        reply = smart_reply(body, chunks=chunks)
        if latency > 0:
            reply.steps.insert(0, Delay(latency))
        return reply

    return respond


def banner(url: str) -> str:
    return "\n".join(
        [
            f"Fake Kiro listening on {url}",
            "Demo account (social), refresh token:",
            f"  {DEMO_REFRESH_TOKEN}",
            "Point Kiro Tray at it:",
            f"  REFRESH_TOKEN={DEMO_REFRESH_TOKEN} KIRO_API_BASE_URL={url} "
            f"KIRO_AUTH_BASE_URL={url} KIRO_OIDC_BASE_URL={url} kiro-tray",
            "Ctrl-C stops the fake.",
        ]
    )


async def serve(host: str, port: int, latency: float, chunks: int) -> None:
    fake = FakeKiro()
    fake.responder = demo_responder(latency, chunks)
    fake.add_account(DEMO_REFRESH_TOKEN, rotate=False)
    url = await fake.start(host, port)
    print(banner(url), flush=True)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()  # until SIGTERM, or Ctrl-C cancels the main task
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_kiro", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each reply's first byte")
    parser.add_argument("--chunks", type=int, default=3, help="text events per reply")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.latency_ms / 1000, max(1, args.chunks)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
