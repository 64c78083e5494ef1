"""The tray drives the real service: stop, start, copy, start at login, notifications, icon states."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from PySide6.QtGui import QGuiApplication

from kiro_tray.events import QuotaExhaustedSeen
from kiro_tray.ui.app import TrayApp
from kiro_tray.ui.icons import draw_pixmap, tray_icon

from ..harness import ALLOW_ALREADY_RUNNING, ALLOW_PORT_BUSY, ALLOW_REFRESH_FAILURES, TEST_KEY
from .conftest import Arun, FakeUpstream, UiFactory, free_port, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + "/health") as resp:
        return resp.status


async def refused(url: str) -> bool:
    try:
        await health(url)
    except aiohttp.ClientConnectorError:
        return True
    return False


def trigger(app: TrayApp, text: str) -> None:
    app.tray.menu.aboutToShow.emit()  # what opening the menu does: rebuild it from the current state
    app.tray.action(text).trigger()


def test_stop_and_start_from_the_tray_menu(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(port=free_port())
    url = app.service.url
    assert url is not None
    assert arun(health(url)) == 200
    assert app.tray.shown_state == "running"

    trigger(app, "Stop server")
    arun(wait_until(app.controller.changed, lambda: app.service.state == "stopped"))
    assert arun(refused(url))
    assert app.tray.shown_state == "stopped"
    app.tray.menu.aboutToShow.emit()
    assert app.tray.menu.actions()[0].text() == "Stopped"

    trigger(app, "Start server")
    arun(wait_until(app.controller.changed, lambda: app.service.state == "running"))
    assert app.service.url == url
    assert arun(health(url)) == 200
    assert app.tray.shown_state == "running"


def test_menu_shows_status_and_every_entry(make_app: UiFactory) -> None:
    app = make_app()
    app.tray.menu.aboutToShow.emit()
    texts = [a.text() for a in app.tray.menu.actions() if not a.isSeparator()]
    assert texts[0] == f"Running on {app.service.url}"
    assert texts[1] == "Account: env"  # the REFRESH_TOKEN login; its quota is not read yet
    assert texts[2] == "Today: 0 requests, 0 errors"
    assert texts[3] == "Credentials: ready"
    assert texts[4:] == [
        "Stop server",
        "Copy base URL",
        "Copy API key",
        "Accounts",
        "Open window",
        "Settings…",
        "Open log folder",
        "Start at login",
        "Quit Kiro Tray",
    ]
    assert "Running on http://127.0.0.1:" in app.tray.icon.toolTip()


def test_copy_actions_fill_the_clipboard(make_app: UiFactory) -> None:
    app = make_app()
    clipboard = QGuiApplication.clipboard()
    trigger(app, "Copy base URL")
    assert clipboard.text() == app.service.url
    trigger(app, "Copy API key")
    assert clipboard.text() == TEST_KEY
    clipboard.clear()


def test_open_window_and_settings_entries_show_the_window(make_app: UiFactory) -> None:
    app = make_app()
    assert app.window.isVisible()  # offscreen has no system tray: the window is the way in
    assert app.window.quit_on_close
    app.window.hide()
    trigger(app, "Settings…")
    assert app.window.isVisible()
    assert app.window.tabs.currentWidget() is app.window.settings
    app.window.hide()
    trigger(app, "Open window")
    assert app.window.isVisible()


def test_start_at_login_writes_the_autostart_entry(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()
    entry = app.controller.autostart_base / "kiro-tray.desktop"
    trigger(app, "Start at login")
    arun(wait_until(app.controller.changed, lambda: app.controller.autostart_enabled))
    assert entry.is_file()
    app.tray.menu.aboutToShow.emit()
    assert app.tray.action("Start at login").isChecked()
    trigger(app, "Start at login")
    arun(wait_until(app.controller.changed, lambda: not app.controller.autostart_enabled))
    assert not entry.exists()


@ALLOW_PORT_BUSY
def test_busy_port_fails_with_the_reason_and_a_notification(make_app: UiFactory) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        app = make_app(port=port)
    assert app.service.state == "failed"
    assert app.controller.last_notification is not None
    title, message = app.controller.last_notification
    assert "port is busy" in title
    assert str(port) in message
    assert app.tray.shown_state == "problem"
    assert "port is busy" in app.window.state_label.full_text
    assert app.window.isVisible()  # a failed start opens the window on the log
    assert app.window.tabs.currentWidget() is app.window.log


def test_quota_used_up_notifies_and_shows_a_problem(make_app: UiFactory) -> None:
    app = make_app()
    app.service.accounts.quota_exhausted.emit(QuotaExhaustedSeen("Monthly request limit reached."))
    app.bridge.flush()
    assert app.controller.last_notification == ("Kiro quota used up", "Monthly request limit reached.")
    assert app.tray.shown_state == "problem"
    assert "Quota used up" in app.controller.status_lines()


@ALLOW_REFRESH_FAILURES
def test_failed_token_refresh_notifies(make_app: UiFactory, fake_kiro: FakeUpstream, arun: Arun) -> None:
    app = make_app()
    fake_kiro.fake.auth.refresh_failure = "invalid_grant"
    fake_kiro.account.expire_access_tokens()

    async def request() -> int:
        url = f"{app.service.url}/v1/chat/completions"
        body = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {TEST_KEY}"}
        async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as resp:
            return resp.status

    status = arun(request())
    assert status >= 400
    arun(wait_until(app.controller.changed, lambda: app.controller.last_notification is not None))
    assert app.controller.last_notification is not None
    assert app.controller.last_notification[0] == "Kiro rejected the login"
    assert app.tray.shown_state == "problem"


@ALLOW_ALREADY_RUNNING
def test_a_second_gateway_on_the_port_says_already_running(make_app: UiFactory) -> None:
    first = make_app(port=free_port())
    second = make_app(port=first.service.port)
    assert second.service.state == "failed"
    assert second.controller.last_notification is not None
    assert second.controller.last_notification[0] == "Kiro Tray is already running"
    assert first.service.state == "running"


def test_icon_shows_busy_while_streams_are_open(make_app: UiFactory) -> None:
    app = make_app()
    metrics = app.service.metrics
    metrics.active_streams += 1
    assert app.controller.icon_state() == "busy"
    metrics.active_streams -= 1
    assert app.controller.icon_state() == "running"


def test_every_state_has_a_distinct_icon(qapp: object) -> None:
    states = ("stopped", "running", "busy", "problem")
    for state in states:
        assert not tray_icon(state).isNull()
    centres = {draw_pixmap(state, 64).toImage().pixelColor(6, 32).name() for state in states}
    assert len(centres) == len(states)
