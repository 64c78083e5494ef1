"""Shared fixtures. Qt runs offscreen; the keyring is in memory unless a test installs another."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor  # noqa: F401 - else the first to_thread imports it under blockbuster

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
import pytest
from blockbuster import blockbuster_ctx

from .memory_keyring import MemoryKeyring


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
