"""End to end with a real system tray: Xvfb + trayer host the icon; xdotool opens its menu and chooses
Stop, then Start (the gateway's /health follows), then left-clicks the icon for the window. Skipped
where those programs are not installed (Debian: ``xvfb trayer xdotool imagemagick``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtGui import QImage

from .conftest import free_port
from .screenshots import OUT_DIR
from .test_app import Lines

T = TypeVar("T")
TOOLS = ("Xvfb", "trayer", "xdotool")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.gui,
    pytest.mark.slow,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        bool(missing),
        reason=f"needs {', '.join(missing)} (Debian packages xvfb trayer xdotool) for a real tray",
    ),
]


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll an outside process (X server, HTTP port) until ``probe`` returns a value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Display:
    env: dict[str, str]

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=10)
        return done.stdout

    def windows(self, name: str) -> list[dict[str, int]]:
        """Visible windows named exactly ``name``, with X, Y, WIDTH, HEIGHT. Every window is asked for its
        name: ``search --name`` misses the icon once trayer has reparented it."""
        found = []
        for window in self.xdotool("search", "--onlyvisible", "--name", "").split():
            if self.xdotool("getwindowname", window).strip() != name:
                continue
            shell = self.xdotool("getwindowgeometry", "--shell", window)
            geometry = dict(line.split("=", 1) for line in shell.splitlines() if "=" in line)
            if {"X", "Y", "WIDTH", "HEIGHT"} <= geometry.keys():
                found.append({k: int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT")})
        return found


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def display(tmp_path: Path) -> Iterator[Display]:
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        assert number, "Xvfb did not report its display"
        env = {**os.environ, "DISPLAY": f":{number}"}
        env.pop("WAYLAND_DISPLAY", None)
        screen = Display(env)
        log = tmp_path / "trayer.log"
        command = ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24"]
        starts = 0

        def start_trayer() -> subprocess.Popen[bytes]:
            nonlocal starts
            starts += 1
            with log.open("ab") as out:
                return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=out)

        trayer = start_trayer()

        def panel() -> list[dict[str, int]] | None:
            nonlocal trayer
            if trayer.poll() is not None and starts < 3:  # died early (seen once under heavy load): again
                trayer = start_trayer()
            return screen.windows("panel") or None

        try:
            try:
                eventually(panel, "trayer's panel", timeout=30)
            except AssertionError as exc:
                detail = log.read_text(errors="replace")[-800:]
                raise AssertionError(
                    f"{exc} (trayer started {starts}x, exit {trayer.poll()}): {detail}"
                ) from None
            yield screen
        finally:
            stop(trayer)
    finally:
        stop(xvfb)


def health(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.URLError:
        return None


def test_tray_menu_stops_and_starts_the_server(display: Display, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    nowhere = f"http://127.0.0.1:{free_port()}"  # no upstream call is made; never leave the machine
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in display.env.items() if not k.startswith(("KIRO_", "REFRESH_", "PROXY_"))}
    env.update(
        QT_QPA_PLATFORM="xcb",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        KIRO_TRAY_CONFIG_DIR=str(tmp_path / "config"),
        REFRESH_TOKEN="x11-test-refresh-token-0123456789",
        PROXY_API_KEY="kt-x11-test-key-0123456789",
        KIRO_API_BASE_URL=nowhere,
        KIRO_AUTH_BASE_URL=nowhere,
        KIRO_OIDC_BASE_URL=nowhere,
    )
    app = subprocess.Popen(
        [sys.executable, "-m", "kiro_tray", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stderr is not None
    lines = Lines(app.stderr)
    try:
        lines.wait_for("tray icon shown")
        assert health(url) == 200
        icon = eventually(
            lambda: next((w for w in display.windows("Kiro Tray") if 16 <= w["WIDTH"] <= 64), None),
            "the tray icon embedded in trayer",
        )
        x, y = icon["X"] + icon["WIDTH"] // 2, icon["Y"] + icon["HEIGHT"] // 2

        def menu() -> dict[str, int] | None:
            return next((w for w in display.windows("Kiro Tray") if w["HEIGHT"] > 100), None)

        def choose_first_entry(screenshot: Path | None = None) -> None:
            eventually(lambda: True if menu() is None else None, "the menu to close")
            for _ in range(3):  # a click that lands while Qt still releases the last popup is lost
                display.xdotool("mousemove", str(x), str(y), "click", "3")
                try:
                    opened = eventually(menu, "the tray menu", timeout=5)
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError("the tray menu never opened")
            if screenshot is not None and shutil.which("import"):
                save_menu_shot(display, opened, screenshot)
            display.xdotool("key", "Down", "Return")  # the first enabled entry: Stop/Start server

        choose_first_entry(tmp_path / "screen.png")
        eventually(lambda: True if health(url) is None else None, "/health to refuse after Stop")
        choose_first_entry()
        eventually(lambda: health(url), "/health to answer after Start")
        eventually(lambda: True if menu() is None else None, "the menu to close")
        display.xdotool("mousemove", str(x), str(y), "click", "1")  # left click: the window
        eventually(
            lambda: next((w for w in display.windows("Kiro Tray") if w["WIDTH"] > 500), None),
            "the main window after a left click",
        )
        app.terminate()
        assert app.wait(timeout=30) == 0
    finally:
        stop(app)
        app.stderr.close()


def save_menu_shot(display: Display, menu: dict[str, int], path: Path) -> None:
    """The real tray menu for the README: the top-right corner of the screen with icon and menu."""
    subprocess.run(["import", "-window", "root", str(path)], env=display.env, check=True, timeout=20)
    screen = QImage(str(path))
    left = max(0, menu["X"] - 16)
    corner = screen.copy(left, 0, screen.width() - left, menu["Y"] + menu["HEIGHT"] + 16)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    assert corner.save(str(OUT_DIR / "tray-menu-x11.png"))
