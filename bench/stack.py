"""The system under test: the fake Kiro and the gateway as child processes, and the client driving them."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .load import REQUEST_TIMEOUT, Endpoints, LoadGenerator, fetch_access_token
from .procs import Child, free_port, spawn, wait_until_answering

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
#: Variables of the parent environment that would change what the children do.
SCRUBBED_PREFIXES = ("KIRO_", "PROXY_", "REFRESH_TOKEN", "PROFILE_ARN", "QT_", "LOG_LEVEL", "PORT", "HOST")


@dataclass(frozen=True, slots=True)
class Running:
    session: aiohttp.ClientSession
    load: LoadGenerator
    fake: Child
    gateway: Child


def client_session() -> aiohttp.ClientSession:
    """One session for all the load: no connection limit, keep-alive, loopback only (no proxies)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


class Stack:
    """Spawns the processes with fresh secrets, a private config dir each, and loopback URLs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.refresh_token = "rt-bench-" + secrets.token_urlsafe(32)
        self.client_key = "kt-bench-" + secrets.token_urlsafe(32)
        self.fake_url = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        env.update(PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        env.update(extra)
        return env

    def spawn_gateway(self, name: str, port: int, *, gui: bool = False) -> Child:
        """``python -m kiro_tray [--headless] --port N`` pointed at the fake, with its own config dir."""
        config_dir = self.workdir / f"config-{name}"
        config_dir.mkdir(exist_ok=True)
        env = self.env(
            PROXY_API_KEY=self.client_key,
            REFRESH_TOKEN=self.refresh_token,
            KIRO_API_BASE_URL=self.fake_url,
            KIRO_AUTH_BASE_URL=self.fake_url,
            KIRO_OIDC_BASE_URL=self.fake_url,
            KIRO_TRAY_CONFIG_DIR=str(config_dir),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            LOG_LEVEL="WARNING",
        )
        args = ["-m", "kiro_tray", "--port", str(port)]
        if gui:
            env["QT_QPA_PLATFORM"] = "offscreen"
        else:
            args.append("--headless")
        return spawn(name, args, env, self.workdir)

    @asynccontextmanager
    async def fake_running(self, session: aiohttp.ClientSession) -> AsyncIterator[Child]:
        port = free_port()
        fake = spawn(
            "fake",
            ["-m", "bench.fake", "--port", str(port)],
            self.env(BENCH_REFRESH_TOKEN=self.refresh_token),
            self.workdir,
        )
        try:
            self.fake_url = f"http://127.0.0.1:{port}"
            await wait_until_answering(session, fake, self.fake_url + "/", START_TIMEOUT, any_status=True)
            yield fake
        finally:
            await asyncio.to_thread(fake.stop)

    @asynccontextmanager
    async def running(self, session: aiohttp.ClientSession, fake: Child) -> AsyncIterator[Running]:
        """The gateway up and answering, and a load generator with a valid bearer token for the fake."""
        port = free_port()
        gateway = self.spawn_gateway("gateway", port)
        try:
            gateway_url = f"http://127.0.0.1:{port}"
            await wait_until_answering(session, gateway, gateway_url + "/health", START_TIMEOUT)
            answer = await fetch_access_token(session, self.fake_url, self.refresh_token)
            endpoints = Endpoints(
                gateway_url, self.fake_url, self.client_key, answer["accessToken"], answer.get("profileArn")
            )
            yield Running(session, LoadGenerator(session, endpoints), fake, gateway)
        finally:
            await asyncio.to_thread(gateway.stop)
