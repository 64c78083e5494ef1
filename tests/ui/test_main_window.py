"""The main window on its own: its menu, its status bar."""

from __future__ import annotations

import configparser
import socket
from pathlib import Path

import aiohttp
import pytest
from PySide6.QtWidgets import QApplication

from kiro_tray.start_mode import StartMode
from kiro_tray.ui.app import TrayApp

from ..harness import ALLOW_PORT_BUSY, ALLOW_REFRESH_FAILURES, TEST_KEY
from .conftest import Arun, FakeUpstream, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def test_start_at_login_from_the_window_starts_the_app_in_its_folder(
    make_app: UiFactory, arun: Arun, tmp_path: Path
) -> None:
    folder = tmp_path / "my kiro-tray"
    app = make_app(start_mode=StartMode(("./kiro-api-start.command",), folder, from_folder=True))
    action = app.window.autostart_action
    base = app.controller.autostart_base
    assert base is not None
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    arun(wait_until(app.controller.changed, lambda: app.controller.autostart_enabled))
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(base / "kiro-tray.desktop")
    assert entry["Desktop Entry"]["Path"] == str(folder)
    assert "-m kiro_tray" in entry["Desktop Entry"]["Exec"]
    assert action.isChecked()
    app.tray.menu.aboutToShow.emit()
    assert app.tray.action("Start at login").isChecked()  # one state, two places
    action.trigger()
    arun(wait_until(app.controller.changed, lambda: not app.controller.autostart_enabled))
    assert not action.isChecked()
    assert not (base / "kiro-tray.desktop").exists()


async def chat(url: str) -> int:
    body = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp,
    ):
        return resp.status


def shown_credentials(app: TrayApp) -> list[str]:
    """What the tray menu, its tooltip and the settings panel say about the login."""
    app.tray.menu.aboutToShow.emit()
    menu = next(a.text() for a in app.tray.menu.actions() if a.text().startswith("Credentials:"))
    tooltip = next(line for line in app.tray.icon.toolTip().splitlines() if line.startswith("Credentials:"))
    return [menu, tooltip, app.window.settings.login_state.text()]


@ALLOW_REFRESH_FAILURES
def test_a_loaded_login_is_ready_everywhere_and_only_a_rejected_one_is_a_problem(
    make_app: UiFactory, fake_kiro: FakeUpstream, arun: Arun
) -> None:
    app = make_app()
    assert app.service.accounts.state() == "ready"  # loaded, no access token fetched yet
    menu, tooltip, settings = shown_credentials(app)
    assert menu == tooltip == "Credentials: ready"
    assert settings.endswith(": ready.") and "xpired" not in settings
    assert app.tray.shown_state == "running"

    fake_kiro.fake.auth.refresh_failure = "invalid_grant"
    assert arun(chat(app.service.url or "")) >= 400
    arun(wait_until(app.controller.changed, lambda: app.controller.credentials.state == "invalid"))
    menu, tooltip, settings = shown_credentials(app)
    assert menu == tooltip == "Credentials: rejected by Kiro, log in again"
    assert ": rejected by Kiro, log in again." in settings
    assert app.controller.icon_state() == "problem"


def test_a_stopped_server_still_shows_the_login_it_had(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()
    arun(app.controller.stop_service())
    assert app.controller.status_lines()[0] == "Stopped"
    menu, tooltip, settings = shown_credentials(app)
    assert menu == tooltip == "Credentials: ready"
    assert settings.endswith(": ready.")
    assert not app.window.settings.guide.isVisibleTo(app.window.settings)  # no first-run guide


@ALLOW_PORT_BUSY
def test_a_failed_start_still_shows_the_login_it_found(make_app: UiFactory) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        app = make_app(port=blocker.getsockname()[1])
    assert app.service.state == "failed"
    menu, tooltip, _ = shown_credentials(app)
    assert menu == tooltip == "Credentials: ready"


def test_the_status_bar_elides_to_its_width_with_the_full_text_in_a_tooltip(
    make_app: UiFactory, qapp: QApplication
) -> None:
    app = make_app()
    window = app.window
    window.bring_forward("")
    label = window.state_label
    app.controller.notify("Kiro Tray could not start", "Port 8000 is busy: another program is using it. " * 3)
    full = label.full_text
    assert full.startswith("Kiro Tray could not start: Port 8000 is busy") and "Credentials: ready" in full
    assert label.toolTip() == full

    window.resize(420, 400)
    qapp.processEvents()
    assert label.text() != full and label.text().endswith("…")
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    assert full.startswith(label.text()[:-1])

    window.resize(label.fontMetrics().horizontalAdvance(full) + 800, 400)
    qapp.processEvents()
    assert label.text() == full
