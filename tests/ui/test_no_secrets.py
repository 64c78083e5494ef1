"""No secret is ever rendered: every widget's text, tooltip, table cell, menu entry and log line is
checked after real traffic, a pasted refresh token and a secret-bearing log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiohttp
import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTabWidget,
    QTextEdit,
    QWidget,
)

from kiro_tray.ui.app import TrayApp

from ..harness import TEST_KEY
from .conftest import Arun, FakeUpstream, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def model_texts(model: QAbstractItemModel) -> Iterator[str]:
    roles = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)
    for row in range(model.rowCount(QModelIndex())):
        for column in range(model.columnCount(QModelIndex())):
            for role in roles:
                value = model.data(model.index(row, column), role)
                if value is not None:
                    yield str(value)
    for column in range(model.columnCount(QModelIndex())):
        yield str(model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole))


def rendered_texts(app: TrayApp) -> Iterator[tuple[str, str]]:
    """(where, text) for everything a user can see, except the masked client-key field's value."""
    window = app.window
    widgets: list[QWidget] = [window, *window.findChildren(QWidget)]
    for widget in widgets:
        where = f"{type(widget).__name__} {widget.objectName()}"
        yield where, widget.toolTip()
        yield where, widget.windowTitle()
        match widget:
            case QLabel() | QAbstractButton():
                yield where, widget.text()
            case QLineEdit():
                yield where, widget.displayText()  # what is drawn (masked fields draw bullets)
                yield where, widget.placeholderText()
            case QPlainTextEdit():
                yield where, widget.toPlainText()
            case QTextEdit():
                yield where, widget.toPlainText()
            case QComboBox():
                yield from ((where, widget.itemText(i)) for i in range(widget.count()))
            case QGroupBox():
                yield where, widget.title()
            case QTabWidget():
                yield from ((where, widget.tabText(i)) for i in range(widget.count()))
            case QAbstractItemView() if widget.model() is not None:
                yield from ((where, text) for text in model_texts(widget.model()))
    yield "status bar", window.statusBar().currentMessage()
    app.tray.menu.aboutToShow.emit()
    yield from (("tray menu", action.text()) for action in app.tray.menu.actions())
    yield from (("tray accounts menu", action.text()) for action in app.tray.accounts_menu.actions())
    yield "tray tooltip", app.tray.icon.toolTip()


@pytest.mark.allow_log(r"^refresh=", logger="kiro_tray.test")  # the test's own line, secrets planted
def test_no_secret_is_rendered_anywhere(make_app: UiFactory, fake_kiro: FakeUpstream, arun: Arun) -> None:
    app = make_app()
    token = fake_kiro.account.refresh_token

    async def traffic() -> None:
        url = f"{app.service.url}/v1/chat/completions"
        body = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as session:
            for headers in ({"Authorization": f"Bearer {TEST_KEY}"}, {"x-api-key": "wrong-key-1234567890"}):
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()

    arun(traffic())
    access_tokens = list(fake_kiro.account.access_tokens)
    assert access_tokens  # the gateway refreshed: there is an access token to leak
    logging.getLogger("kiro_tray.test").warning(
        "refresh=%s access=%s key=%s", token, access_tokens[0], TEST_KEY
    )
    panel = app.window.settings
    panel.token_edit.setText(token)  # typed but not applied: still masked
    arun(wait_until(app.bridge.flushed, lambda: app.window.requests_model.rowCount() == 2))
    app.window.requests.table.selectRow(0)
    app.window.log.level.setCurrentIndex(0)  # debug: everything

    secrets = {"refresh token": token, "client key": TEST_KEY}
    secrets["rotated refresh token"] = fake_kiro.account.refresh_token
    secrets.update({f"access token {i}": t for i, t in enumerate(access_tokens)})
    seen = 0
    for where, text in rendered_texts(app):
        seen += 1
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} is rendered in {where}"
    assert seen > 100
    assert "refresh=***" in app.window.log.text.toPlainText()

    panel.show_key.click()  # the one place a secret may be shown: on request, in its own field
    assert panel.key_edit.displayText() == TEST_KEY
