"""The main window on its own: its menu, its status bar."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from kiro_tray.start_mode import StartMode

from .conftest import Arun, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def test_start_at_login_from_the_window_starts_the_app_in_its_folder(
    make_app: UiFactory, arun: Arun, tmp_path: Path
) -> None:
    folder = tmp_path / "my kiro-tray"
    app = make_app(start_mode=StartMode(("./kiro-api-start.command",), folder, from_folder=True))
    action = app.window.autostart_action
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    arun(wait_until(app.controller.changed, lambda: app.controller.autostart_enabled))
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(app.controller.autostart_base / "kiro-tray.desktop")
    assert entry["Desktop Entry"]["Path"] == str(folder)
    assert "-m kiro_tray" in entry["Desktop Entry"]["Exec"]
    assert action.isChecked()
    app.tray.menu.aboutToShow.emit()
    assert app.tray.action("Start at login").isChecked()  # one state, two places
    action.trigger()
    arun(wait_until(app.controller.changed, lambda: not app.controller.autostart_enabled))
    assert not action.isChecked()
    assert not (app.controller.autostart_base / "kiro-tray.desktop").exists()
