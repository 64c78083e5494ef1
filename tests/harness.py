"""Test harness: the fake Kiro and a real gateway on their own event loop in a background thread.

Tests talk to the gateway over real HTTP, with the official ``openai`` and ``anthropic`` SDKs (sync ones
from the test thread, async ones from pytest's loop). Nothing of the gateway is mocked.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import openai
import pytest

from kiro_tray.gateway.service import GatewayService
from kiro_tray.logging_setup import LoggingSetup, setup_logging
from kiro_tray.settings import Settings
from kiro_tray.upstream.secret_store import SecretStore

from .fake_kiro.auth import Account
from .fake_kiro.server import FakeKiro

T = TypeVar("T")
TEST_KEY = "kt-test-client-key-0123456789"

# ---- log lines a test may expect (tests/logfail.py fails a test on any other WARNING or ERROR) -------

#: A failed attempt at Kiro that the client retries (fault tests, retry tests).
ALLOW_RETRIES = pytest.mark.allow_log(
    r"^Kiro attempt \d+ failed \(.+\); retrying in [\d.]+ s$", logger="kiro_tray.upstream.client"
)
#: The token refresh endpoint failing: unreachable, or rejecting the refresh token.
ALLOW_REFRESH_FAILURES = pytest.mark.allow_log(
    r"^(The Kiro token refresh endpoint is unreachable|Kiro rejected the refresh token \(invalid_grant\))",
    logger="kiro_tray.upstream.tokens",
)
#: A gateway started without any Kiro login.
ALLOW_NO_CREDENTIALS = pytest.mark.allow_log(r"^no Kiro credentials found", logger="kiro_tray.accounts")
#: A machine without a usable keyring: secrets go to the private file, and the log says so.
ALLOW_KEYRING_FALLBACK = pytest.mark.allow_log(
    r"^no usable OS keyring \(.+\): secrets are kept in ", logger="kiro_tray.upstream.secret_store"
)
#: The port is taken, by another program or by another Kiro Tray: the gateway fails with the reason.
ALLOW_PORT_BUSY = pytest.mark.allow_log(r"^Port \d+ is busy: ", level="ERROR", logger="kiro_tray.gateway")
ALLOW_ALREADY_RUNNING = pytest.mark.allow_log(
    r"^Kiro Tray is already running on ", level="ERROR", logger="kiro_tray.gateway"
)
#: First start without a client key: one is generated (product noise? a first-run event logged as WARNING).
ALLOW_KEY_GENERATED = pytest.mark.allow_log(
    r"^generated a new client API key and saved it", logger="kiro_tray.gateway"
)


class LoopThread:
    """An asyncio loop running forever in a daemon thread; ``run`` executes a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="server-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the loop thread (for state the loop also touches)."""

        async def wrapper() -> Any:
            return fn(*args)

        return self.run(wrapper())

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def gateway_settings(fake_url: str, account: Account | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "port": 0,
        "proxy_api_key": TEST_KEY,
        "refresh_token": account.refresh_token if account else None,
        "kiro_api_base_url": fake_url,
        "kiro_auth_base_url": fake_url,
        "kiro_oidc_base_url": fake_url,
        "first_token_timeout": 10.0,
        "stream_read_timeout": 10.0,
        "non_stream_timeout": 20.0,
        "max_retries": 2,
        "log_level": "DEBUG",  # every test doubles as a leak scan at the chattiest level
        "usage_poll_minutes": 0,  # no background quota calls unless a test asks for them
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Gateway:
    thread: LoopThread
    fake: FakeKiro
    service: GatewayService
    account: Account | None
    logs: LoggingSetup
    home: Path
    key: str = TEST_KEY
    extra: dict[str, Any] = field(default_factory=dict)
    pool: dict[str, Account] = field(default_factory=dict)
    clients: list[openai.OpenAI | anthropic.Anthropic] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.service.url is not None
        return self.service.url

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("api_key", self.key)
        client = openai.OpenAI(base_url=self.url + "/v1", max_retries=0, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    def anthropic(self, **kwargs: Any) -> anthropic.Anthropic:
        kwargs.setdefault("api_key", self.key)
        client = anthropic.Anthropic(base_url=self.url, max_retries=0, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    def async_openai(self, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("api_key", self.key)
        return openai.AsyncOpenAI(base_url=self.url + "/v1", max_retries=0, timeout=30, **kwargs)

    def async_anthropic(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        kwargs.setdefault("api_key", self.key)
        return anthropic.AsyncAnthropic(base_url=self.url, max_retries=0, timeout=30, **kwargs)

    def enqueue(self, *replies: Any) -> None:
        self.thread.call(self.fake.enqueue, *replies)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.thread.run(coro, timeout)

    def restart_with(self, **overrides: Any) -> None:
        new = self.service.settings.with_values(**overrides)
        self.run(self.service.apply_settings(new))


#: Shapes of every token the fake issues (tests/fake_kiro/auth.py): refresh tokens and access tokens.
SECRET_SHAPES = re.compile(r"rt-[A-Za-z0-9_-]{60,}|aoa[A-Za-z0-9_-]{40,}|" + re.escape(TEST_KEY))


def leaked_secrets(gw: Gateway) -> list[str]:
    """Every place a token or the client key shows up in a log line or a request record (the UI's model)."""
    found: list[str] = []
    for line in gw.logs.ring.lines:
        if SECRET_SHAPES.search(line.message):
            found.append(f"log {line.logger}: {line.message[:200]}")
    for record in gw.service.store:
        for name in ("error", "summary", "response_preview", "client"):
            value = getattr(record, name) or ""
            if SECRET_SHAPES.search(value):
                found.append(f"record.{name}: {value[:200]}")
        for key, value in record.headers.items():
            if SECRET_SHAPES.search(value):
                found.append(f"record.headers[{key}]")
    return found


def start_gateway(
    home: Path,
    *,
    with_account: bool = True,
    ping_interval: float = 15.0,
    pool: tuple[str, ...] = (),
    **overrides: Any,
) -> Gateway:
    """``pool`` names accounts the fake gets and a ``KIRO_ACCOUNTS_FILE`` lists (``gw.pool[name]``)."""
    thread = LoopThread()
    fake = FakeKiro()
    fake_url = thread.run(fake.start())
    account = thread.call(fake.add_account) if with_account and not pool else None
    members = {name: thread.call(fake.add_account) for name in pool}
    if pool:
        accounts_file = home / "kiro-accounts.json"
        entries = [
            {"name": name, "refreshToken": a.refresh_token, "note": "kept"} for name, a in members.items()
        ]
        accounts_file.write_text(json.dumps(entries))
        overrides.setdefault("kiro_accounts_file", accounts_file)
    settings = gateway_settings(fake_url, account, **overrides)
    logs = setup_logging(settings.python_log_level, home / "logs", console=False)
    service = GatewayService(
        settings,
        secret_store=SecretStore(home / "config"),
        logging_setup=logs,
        home=home,
        client_tuning={"backoff_base": 0.01, "backoff_cap": 0.05},
        ping_interval=ping_interval,
    )
    thread.run(service.start())
    return Gateway(thread, fake, service, account, logs, home, pool=members)


def stop_gateway(gw: Gateway) -> None:
    for client in gw.clients:
        client.close()
    try:
        gw.run(gw.service.stop())
        gw.run(gw.fake.close())
        leaks = leaked_secrets(gw)
        assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    finally:
        gw.logs.close()
        gw.thread.close()
