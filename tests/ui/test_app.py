"""Start-up and shutdown: Quit ends the run with 0; one instance per config folder; SIGTERM is a Quit."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from pytestqt.qtbot import QtBot

from kiro_tray.ui.app import SingleInstance, TrayApp, instance_name

from ..harness import TEST_KEY
from .conftest import Arun, UiFactory, free_port, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]


def test_quit_from_the_menu_stops_the_service_and_saves_the_window(make_app: UiFactory, arun: Arun) -> None:
    app: TrayApp = make_app(start=False)

    async def run_and_quit() -> int:
        running = asyncio.ensure_future(app.run())
        await wait_until(app.controller.changed, lambda: app.service.state == "running")
        app.tray.menu.aboutToShow.emit()
        app.tray.action("Quit Kiro Tray").trigger()
        return await running

    assert arun(run_and_quit()) == 0
    assert app.service.state == "stopped"
    assert (app.paths.config_dir / "window.ini").is_file()
    window_state = (app.paths.config_dir / "window.ini").read_text()
    assert "geometry" in window_state
    assert TEST_KEY not in window_state
    assert app.service.settings.refresh_token is not None
    assert app.service.settings.refresh_token not in window_state


def test_closing_the_window_quits_where_there_is_no_tray(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()
    assert not app.has_tray  # offscreen
    app.window.close()
    assert app.quit_event.is_set()


def test_a_second_instance_asks_the_first_to_show(tmp_path: Path, qtbot: QtBot) -> None:
    first = SingleInstance(instance_name(tmp_path))
    assert first.listen()
    second = SingleInstance(instance_name(tmp_path))
    with qtbot.waitSignal(first.activated, timeout=5000):
        assert second.ask_running_instance()
    first.close()
    other = SingleInstance(instance_name(tmp_path / "elsewhere"))
    assert not other.ask_running_instance()


@pytest.fixture
def gui_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "REFRESH_", "PROXY_"))}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",  # never the developer's real keyring
        KIRO_TRAY_CONFIG_DIR=str(tmp_path / "config"),
    )
    (tmp_path / "home").mkdir()
    yield env


def launch(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kiro_tray", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """A child's stderr, read by a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            self.queue.put(line)
        self.queue.put("")

    def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if needle in line:
                return
            if line == "":
                break
        raise AssertionError(f"{needle!r} never appeared:\n{''.join(self.seen)}")


@pytest.mark.slow
def test_the_real_app_is_single_instance_and_exits_0_on_sigterm(
    gui_env: dict[str, str], tmp_path: Path
) -> None:
    port = str(free_port())
    first = launch(gui_env, tmp_path, "--port", port)
    assert first.stderr is not None
    lines = Lines(first.stderr)
    try:
        lines.wait_for("the window is the way in")
        second = launch(gui_env, tmp_path, "--port", port)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 0
        assert "already running" in out
        lines.wait_for("another launch asked for the window")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        for stream in (first.stdout, first.stderr):
            if stream is not None:
                stream.close()
    assert (tmp_path / "config" / "window.ini").is_file()
    assert (tmp_path / "config" / "secrets.json").is_file()  # no keyring: the visible file fallback
