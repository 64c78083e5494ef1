"""Shared fixtures. Qt runs offscreen; the keyring is in memory unless a test installs another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor  # noqa: F401 - else the first to_thread imports it under blockbuster

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import aiohttp
import keyring
import pytest
import pytest_asyncio
from blockbuster import blockbuster_ctx

from .fake_kiro.server import FakeKiro
from .memory_keyring import MemoryKeyring

# Unexpected WARNING/ERROR log lines fail the test that logged them (see tests/logfail.py).
pytest_plugins = ["tests.logfail"]


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def gateway(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[object]:
    """A running gateway in front of a fresh fake Kiro (one social account). Settings can be overridden
    with ``@pytest.mark.gateway_settings(name=value, ...)``."""
    from .harness import start_gateway, stop_gateway

    marker = request.node.get_closest_marker("gateway_settings")
    overrides = dict(marker.kwargs) if marker else {}
    home = tmp_path_factory.mktemp("home")
    # Blocking calls made by the gateway's code while on the event loop fail the test.
    with blockbuster_ctx(scanned_modules=["kiro_tray"]):
        gw = start_gateway(home, **overrides)
        try:
            yield gw
        finally:
            stop_gateway(gw)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeKiro]:
    """A fake Kiro on the test's own loop (for tests that drive upstream code directly)."""
    server = FakeKiro()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
