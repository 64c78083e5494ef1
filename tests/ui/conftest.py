"""UI test fixtures: Qt warnings fail tests; each test gets its own qasync loop with the fake Kiro on it.

Pattern A of platform-notes: a per-test ``qasync.QEventLoop`` and a sync ``arun(coro, timeout)``. Tests are
sync functions; everything asynchronous runs inside ``arun``. qtbot is only used between loop runs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QtMsgType, SignalInstance, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from kiro_tray.paths import AppPaths
from kiro_tray.start_mode import StartMode
from kiro_tray.ui.app import TrayApp

from ..fake_kiro.auth import Account
from ..fake_kiro.server import FakeKiro
from ..harness import gateway_settings

T = TypeVar("T")

# Messages the offscreen platform itself prints for ordinary calls; anything else at warning level fails.
BENIGN_QT_MESSAGES = (
    "This plugin does not support propagateSizeHints()",
    "This plugin does not support raise()",
)


@pytest.fixture(autouse=True)
def qt_warnings_fail() -> Iterator[list[str]]:
    recorded: list[str] = []

    def handler(kind: QtMsgType, context: Any, message: str) -> None:
        if kind != QtMsgType.QtDebugMsg and kind != QtMsgType.QtInfoMsg and message not in BENIGN_QT_MESSAGES:
            recorded.append(f"{kind.name}: {message}")
        if previous is not None:
            previous(kind, context, message)

    previous = qInstallMessageHandler(handler)
    yield recorded
    qInstallMessageHandler(previous)
    if recorded:
        pytest.fail("Qt warnings:\n" + "\n".join(recorded), pytrace=False)


Arun = Callable[..., Any]


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def arun(qloop: qasync.QEventLoop) -> Arun:
    def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return qloop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run


async def wait_until(signal: SignalInstance, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, checking it each time ``signal`` fires (event-driven, no polling)."""
    if predicate():
        return
    done = asyncio.get_running_loop().create_future()

    def check(*_: object) -> None:
        if not done.done() and predicate():
            done.set_result(None)

    signal.connect(check)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        signal.disconnect(check)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeUpstream:
    fake: FakeKiro
    account: Account
    url: str


@pytest.fixture(autouse=True)
def qt_garbage_collected_here() -> Iterator[None]:
    """Free each test's Qt objects at its end, on this (the GUI) thread. Left to the cyclic garbage
    collector, they are destroyed whenever it next runs, which may be on a later test's server-loop thread:
    Qt objects destroyed off the GUI thread crashed the test process."""
    yield
    gc.collect()


@pytest.fixture
def fake_kiro(arun: Arun) -> Iterator[FakeUpstream]:
    fake = FakeKiro()
    url = arun(fake.start())
    account = fake.add_account()
    try:
        yield FakeUpstream(fake, account, url)
    finally:
        arun(fake.close())


@dataclass
class UiFactory:
    """Builds :class:`TrayApp` instances in front of the fake Kiro; shuts them down after the test."""

    upstream: FakeUpstream
    tmp_path: Path
    arun: Arun
    apps: list[TrayApp]
    pool: dict[str, Account] = field(default_factory=dict)

    def __call__(
        self,
        *,
        with_credentials: bool = True,
        start: bool = True,
        start_mode: StartMode | None = None,
        pool: tuple[str, ...] = (),
        **overrides: Any,
    ) -> TrayApp:
        """``pool`` names accounts the fake gets and a ``KIRO_ACCOUNTS_FILE`` lists (``self.pool[name]``)."""
        base = self.tmp_path / f"app{len(self.apps)}"
        home = base / "home"
        home.mkdir(parents=True)
        if pool:
            self.pool = {name: self.upstream.fake.add_account() for name in pool}
            accounts_file = home / "kiro-accounts.json"
            entries = [{"name": n, "refreshToken": a.refresh_token} for n, a in self.pool.items()]
            accounts_file.write_text(json.dumps(entries))
            overrides.setdefault("kiro_accounts_file", accounts_file)
            with_credentials = False
        settings = gateway_settings(
            self.upstream.url, self.upstream.account if with_credentials else None, **overrides
        )
        paths = AppPaths(base / "config", base / "logs")
        mode = start_mode or StartMode(("kiro-tray",), base / "app")
        app = TrayApp(
            settings, paths, home=home, autostart_base=base / "autostart", console=False, start_mode=mode
        )
        self.apps.append(app)
        if start:
            self.arun(app.start())
        return app


@pytest.fixture
def make_app(fake_kiro: FakeUpstream, tmp_path: Path, arun: Arun) -> Iterator[UiFactory]:
    factory = UiFactory(fake_kiro, tmp_path, arun, [])
    try:
        yield factory
    finally:
        for app in factory.apps:
            arun(app.shutdown())
        factory.apps.clear()
