"""The settings panel: generated from the declarations, validated inline, applied precisely."""

from __future__ import annotations

import json
import logging
import socket
import stat
from pathlib import Path

import aiohttp
import keyring
import keyring.backends.fail
import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QMessageBox

from kiro_tray.settings import DECLARATIONS, SETTINGS_FILE_NAME
from kiro_tray.start_mode import StartMode
from kiro_tray.ui.app import TrayApp

from ..harness import ALLOW_KEY_GENERATED, ALLOW_KEYRING_FALLBACK, ALLOW_NO_CREDENTIALS, ALLOW_PORT_BUSY
from ..memory_keyring import MemoryKeyring
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


def settings_file(app: TrayApp) -> dict[str, object]:
    return json.loads((app.paths.config_dir / SETTINGS_FILE_NAME).read_text())


def line(app: TrayApp, name: str) -> QLineEdit:
    editor = app.window.settings.fields[name].input
    assert isinstance(editor, QLineEdit)
    return editor


def test_every_non_secret_declaration_has_an_editor_of_its_kind(make_app: UiFactory) -> None:
    panel = make_app().window.settings
    expected = {s.name for s in DECLARATIONS if not s.secret}
    assert set(panel.fields) == expected
    kinds = {QCheckBox: "bool", QComboBox: "choice"}
    for setting in DECLARATIONS:
        if setting.secret:
            continue
        editor = panel.fields[setting.name].input
        assert kinds.get(type(editor), "text") == (
            setting.kind if setting.kind in ("bool", "choice") else "text"
        )
    assert not panel.apply_button.isEnabled()  # nothing changed yet


def test_invalid_values_show_the_reason_next_to_the_field(make_app: UiFactory) -> None:
    app = make_app()
    panel = app.window.settings
    line(app, "port").setText("eighty")
    assert panel.fields["port"].error == "'eighty' is not a whole number"
    assert panel.fields["port"].message.isVisibleTo(panel)
    assert not panel.apply_button.isEnabled()
    line(app, "port").setText("70000")
    assert panel.fields["port"].error == "70000 is above the maximum 65535"
    line(app, "kiro_creds_file").setText("/nowhere/creds.json")
    line(app, "port").setText("8123")
    assert panel.fields["port"].error is None
    assert panel.fields["kiro_creds_file"].error == "/nowhere/creds.json does not exist"
    line(app, "kiro_creds_file").setText("")
    assert panel.fields["kiro_creds_file"].error is None
    assert panel.apply_button.isEnabled()
    panel.revert()
    assert line(app, "port").text() == "0"
    assert not panel.apply_button.isEnabled()


def test_port_change_restarts_on_the_new_port(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()
    old_url = app.service.url
    assert old_url is not None
    port = free_port()
    line(app, "port").setText(str(port))
    assert arun(app.window.settings.apply())
    assert app.service.port == port
    assert app.service.url == f"http://127.0.0.1:{port}"
    assert arun(health(app.service.url)) == 200
    assert arun(refused(old_url))
    assert settings_file(app)["port"] == port
    assert app.window.settings.status.text() == "Applied Port."  # the field's label, not PORT


@ALLOW_PORT_BUSY
@pytest.mark.parametrize("answer", ["Don't save", "Keep it"])
def test_a_port_that_failed_to_bind_is_saved_only_when_the_user_keeps_it(
    make_app: UiFactory, arun: Arun, answer: str
) -> None:
    app = make_app()
    panel = app.window.settings
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        line(app, "port").setText(str(busy))
        line(app, "max_tenants").setText("7")
        assert arun(panel.apply())
    assert app.service.state == "failed"
    assert "port" not in settings_file(app)
    assert settings_file(app)["max_tenants"] == 7  # the rest of the form is saved as usual
    assert f"Port {busy} is busy" in panel.status.text()
    assert "The new Port was not saved." in panel.status.text()
    box = panel.keep_box
    assert box is not None and box.isVisible()
    assert box.defaultButton().text() == "Don't save"
    next(b for b in box.buttons() if b.text() == answer).click()
    assert panel.keep_box is None
    if answer == "Keep it":
        arun(wait_until(panel.applied, lambda: "port" in settings_file(app)))
        assert settings_file(app)["port"] == busy
        assert panel.status.text() == "Saved Port."
    else:
        assert "port" not in settings_file(app)


def test_log_level_applies_live_without_a_restart(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(log_level="WARNING")
    assert app.logging_setup.logger.level == logging.WARNING
    port = app.service.port
    combo = app.window.settings.fields["log_level"].input
    assert isinstance(combo, QComboBox)
    combo.setCurrentText("DEBUG")
    assert arun(app.window.settings.apply())
    assert app.logging_setup.logger.level == logging.DEBUG
    assert app.service.port == port  # not restarted
    assert settings_file(app)["log_level"] == "DEBUG"
    assert app.window.settings.status.text() == "Applied Log level."


@ALLOW_NO_CREDENTIALS
def test_pasted_refresh_token_goes_to_the_keyring_only(
    make_app: UiFactory, fake_kiro: FakeUpstream, arun: Arun, memory_keyring: MemoryKeyring
) -> None:
    app = make_app(with_credentials=False)
    panel = app.window.settings
    assert app.service.accounts.state() == "missing"
    assert panel.guide.isVisibleTo(panel)  # first run: the guide is shown
    assert app.window.tabs.currentWidget() is panel

    token = fake_kiro.account.refresh_token
    panel.token_edit.setText(token[:10] + "...")
    assert panel.token_message.text().startswith("Refresh token: the refresh token is truncated")
    assert not panel.apply_button.isEnabled()
    panel.token_edit.setText(token)
    line(app, "profile_arn").setText("arn:aws:codewhisperer:us-east-1:111111111111:profile/TEST")
    assert arun(panel.apply())

    assert memory_keyring.values[("kiro-tray", "refresh_token")] == token
    assert memory_keyring.values[("kiro-tray", "profile_arn")].endswith("profile/TEST")
    saved = (app.paths.config_dir / SETTINGS_FILE_NAME).read_text()
    assert token not in saved
    assert "refresh_token" not in json.loads(saved)
    assert "proxy_api_key" not in json.loads(saved)
    assert stat.S_IMODE((app.paths.config_dir / SETTINGS_FILE_NAME).stat().st_mode) == 0o600
    assert panel.token_edit.text() == ""
    assert app.service.accounts.info().source == "keyring"
    assert app.service.accounts.state() != "missing"
    assert not panel.guide.isVisibleTo(panel)


@ALLOW_KEYRING_FALLBACK
@ALLOW_KEY_GENERATED
def test_without_a_keyring_the_fallback_is_visible(make_app: UiFactory, arun: Arun) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # the memory_keyring fixture restores it
    app = make_app(proxy_api_key=None)
    notice = app.window.settings.fallback_notice
    assert notice.isVisibleTo(app.window.settings)
    secrets_file = app.paths.config_dir / "secrets.json"
    assert str(secrets_file) in notice.text()
    assert app.service.state == "running"
    assert app.service.proxy_key_generated
    assert json.loads(secrets_file.read_text())["proxy_api_key"] == app.service.proxy_api_key
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert app.window.settings.key_notice.text().startswith("A client key was generated for you")


def test_with_a_keyring_there_is_no_fallback_notice(make_app: UiFactory) -> None:
    app = make_app()
    assert not app.window.settings.fallback_notice.isVisibleTo(app.window.settings)


@ALLOW_KEY_GENERATED
def test_client_key_is_masked_shown_copied_and_regenerated(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(proxy_api_key=None)
    panel = app.window.settings
    key = app.service.proxy_api_key
    assert panel.key_edit.echoMode() == QLineEdit.EchoMode.Password
    assert key not in panel.key_edit.displayText()
    panel.show_key.click()
    assert panel.key_edit.displayText() == key
    panel.show_key.click()
    assert panel.key_edit.echoMode() == QLineEdit.EchoMode.Password
    assert panel.regenerate_key.isEnabled()
    arun(panel.regenerate())  # the slot returns its task
    assert app.service.proxy_api_key != key
    assert panel.key_edit.text() == app.service.proxy_api_key


def test_client_key_hint_names_the_command_that_started_the_app(make_app: UiFactory, tmp_path: Path) -> None:
    folder = tmp_path / "Kiro Tray"
    launcher = make_app(start_mode=StartMode(("./kiro-api-start.command",), folder, from_folder=True))
    command = "<code>./kiro-api-start.command --print-key</code>"
    assert (
        f"In a terminal in <code>{folder}</code>, {command} prints it."
        in launcher.window.settings.key_hint.text()
    )
    script = make_app(start_mode=StartMode(("kiro-tray",), folder))
    assert (
        "In a terminal, <code>kiro-tray --print-key</code> prints it."
        in script.window.settings.key_hint.text()
    )


def test_regenerating_the_client_key_asks_first(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(proxy_api_key=None)
    panel = app.window.settings
    key = app.service.proxy_api_key
    panel.regenerate_key.click()
    box = panel.regenerate_box
    assert box is not None and box.isVisible()
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    assert box.defaultButton() is cancel
    cancel.click()
    assert panel.regenerate_box is None
    assert app.service.proxy_api_key == key
    assert panel.key_edit.text() == key
    assert panel.status.text() == "The client key was kept."

    panel.regenerate_key.click()
    box = panel.regenerate_box
    assert box is not None
    confirm = next(b for b in box.buttons() if b.text() == "Regenerate")
    confirm.click()
    # The panel shows the new key once the regeneration (and its keyring write) has finished.
    arun(wait_until(panel.keyRegenerated, lambda: panel.key_edit.text() != key))
    assert panel.key_edit.text() == app.service.proxy_api_key != key


def test_explicit_client_key_cannot_be_regenerated_here(make_app: UiFactory) -> None:
    app = make_app()  # PROXY_API_KEY given explicitly
    assert not app.window.settings.regenerate_key.isEnabled()


def test_a_detected_kiro_ide_login_is_used_and_named(
    make_app: UiFactory, fake_kiro: FakeUpstream, arun: Arun
) -> None:
    app = make_app(with_credentials=False, start=False)
    assert app.service.home is not None
    ide_file = app.service.home / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
    ide_file.parent.mkdir(parents=True)
    ide_file.write_text(
        json.dumps(
            {
                "refreshToken": fake_kiro.account.refresh_token,
                "region": "us-east-1",
                "authMethod": "social",
                "provider": "Google",
            }
        )
    )
    arun(app.start())
    panel = app.window.settings
    assert app.service.accounts.info().auto_detected
    assert panel.login_state.text().startswith(f"Detected and using Kiro IDE login ({ide_file})")
    assert not panel.guide.isVisibleTo(panel)
    assert fake_kiro.account.refresh_token not in panel.login_state.text()
