"""The log panel: a live tail of the redacted ring buffer with a level filter and copy."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtGui import QGuiApplication

from .conftest import Arun, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


@pytest.mark.allow_log(r"^a warning line with Bearer ", logger="kiro_tray.test")  # the test's own line
def test_live_tail_level_filter_and_copy(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(log_level="DEBUG")
    panel = app.window.log
    log = logging.getLogger("kiro_tray.test")
    log.debug("a debug line")
    log.warning("a warning line with Bearer abcdefghijklmnopqrstuvwxyz")
    arun(wait_until(app.bridge.flushed, lambda: "a warning line" in panel.text.toPlainText()))
    text = panel.text.toPlainText()
    assert "a debug line" not in text  # the panel starts at Info
    assert "Bearer ***" in text
    assert "abcdefghijklmnopqrstuvwxyz" not in text

    panel.level.setCurrentIndex(panel.level.findData(logging.DEBUG))
    assert "a debug line" in panel.text.toPlainText()
    panel.level.setCurrentIndex(panel.level.findData(logging.WARNING))
    shown = panel.text.toPlainText().splitlines()
    assert shown and all(" WARNING " in line or " ERROR " in line for line in shown)

    panel.copy_button.click()
    assert QGuiApplication.clipboard().text() == panel.text.toPlainText()
    QGuiApplication.clipboard().clear()
    assert panel.open_button.isEnabled()
    assert panel.file_path == app.logging_setup.file_path
