"""The settings panel, generated from :data:`~kiro_tray.settings.DECLARATIONS`.

Each non-secret declaration becomes an editor with an inline error label (the :class:`SettingsError`
reason). The two secrets get dedicated sections: the Kiro refresh token is write-only (pasted, saved to
the :class:`SecretStore`, the field cleared again), and the client API key is shown masked with show,
copy and regenerate. Apply changes only what changed: ``GatewayService.apply_settings`` restarts,
resets credentials or applies live as each declaration says; the settings file gets non-secret values.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, assert_never

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..events import ServiceStateChanged
from ..gateway.service import GatewayService
from ..logging_setup import Redactor
from ..protocol.errors import CredentialsError
from ..settings import (
    BY_ENV,
    BY_NAME,
    DECLARATIONS,
    SETTINGS_FILE_NAME,
    Setting,
    Settings,
    SettingsError,
    write_settings_file,
)
from ..start_mode import StartMode
from ..upstream.credentials import save_login, validate_refresh_token
from ..upstream.secret_store import SecretStoreError
from .credentials import CredentialView, read_credentials
from .slots import async_slot

log = logging.getLogger("kiro_tray.ui.settings")

BIND_SETTINGS = frozenset({"host", "port"})  # where the server listens: saved once it could listen there
BIND_FAILURES = frozenset({"port_busy", "port_denied", "already_running"})
EXPLICIT_ORIGINS = {"env": "the environment", ".env": "the .env file", "cli": "the command line"}
LOGIN_GROUP = "Credentials"
ERROR_STYLE = "color: #c62828;"
NOTE_STYLE = "color: palette(mid);"
BANNER_STYLE = "QLabel { background: %s; border: 1px solid %s; border-radius: 4px; padding: 8px; }"
WARNING_BANNER = BANNER_STYLE % ("#fff4e5", "#f0b35e")
INFO_BANNER = BANNER_STYLE % ("#e8f1fc", "#8fb5e6")

FIRST_RUN_GUIDE = """<b>Connect Kiro Tray to your Kiro account</b> (any one of these):
<ul>
<li><b>Kiro IDE</b>: log in to the Kiro IDE once. It keeps its login in
<code>~/.aws/sso/cache/kiro-auth-token.json</code>, which Kiro Tray finds by itself.</li>
<li><b>kiro-cli</b>: run <code>kiro-cli login</code>. It keeps its login in its
<code>data.sqlite3</code> database, which Kiro Tray also finds by itself
(or choose it below as the kiro-cli database).</li>
<li><b>A refresh token</b>: paste it in the field below and press Apply.
It is saved in your OS keyring, never in the settings file.</li>
</ul>
Then point your client at the base URL with the client API key shown below."""


WORDS = {
    "arn": "ARN",
    "cli": "CLI",
    "db": "database",
    "url": "URL",
    "api": "API",
    "oidc": "OIDC",
    "cors": "CORS",
    "kiro": "Kiro",
    "creds": "credentials",
}
UNITS = {"mb": "MB", "bytes": "bytes", "timeout": "seconds"}


def label_for(setting: Setting) -> str:
    """``max_body_mb`` -> "Max body (MB)", ``kiro_cli_db_file`` -> "Kiro CLI database file"."""
    words = setting.name.split("_")
    unit = UNITS.get(words[-1])
    if unit is not None and words[-1] != "timeout":
        words = words[:-1]
    text = " ".join(WORDS.get(w, w) for w in words)
    text = text[0].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def display_value(value: Any) -> Any:
    """A setting value as its editor holds it (text, or a bool for check boxes)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    return str(value)


class FieldEditor:
    """One declaration's editor, its inline message label and a way back to a raw value."""

    def __init__(self, setting: Setting, value: Any, on_change: Callable[[], object]) -> None:
        self.setting = setting
        self.widget: QWidget
        self.input: QCheckBox | QComboBox | QLineEdit
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.message.setObjectName(f"message_{setting.name}")
        self._note = ""
        self.error: str | None = None
        match setting.kind:
            case "bool":
                box = QCheckBox(setting.help)
                box.toggled.connect(on_change)
                self.widget = self.input = box
            case "choice":
                combo = QComboBox()
                combo.addItems(setting.choices)
                combo.currentIndexChanged.connect(on_change)
                combo.setMaximumWidth(160)
                self.widget = self.input = combo
            case "path":
                line = QLineEdit()
                line.setClearButtonEnabled(True)
                line.textChanged.connect(on_change)
                browse = QPushButton("Browse…")
                browse.clicked.connect(self._browse)
                row = QWidget()
                layout = QHBoxLayout(row)
                layout.setContentsMargins(0, 0, 0, 0)
                layout.addWidget(line, 1)
                layout.addWidget(browse)
                self.input = line
                self.widget = row
            case "str" | "url" | "int" | "float":
                line = QLineEdit()
                line.textChanged.connect(on_change)
                if setting.kind in ("int", "float"):
                    line.setMaximumWidth(160)
                self.widget = self.input = line
            case unknown:
                assert_never(unknown)
        self.input.setObjectName(f"setting_{setting.name}")
        self.input.setToolTip(f"{setting.help}\n(environment variable {setting.env})")
        self.set_value(value)

    def set_value(self, value: Any) -> None:
        shown = display_value(value)
        match self.input:
            case QCheckBox():
                self.input.setChecked(bool(shown))
            case QComboBox():
                self.input.setCurrentIndex(max(0, self.input.findText(str(shown))))
            case QLineEdit():
                self.input.setText(str(shown))
            case unknown:
                assert_never(unknown)

    def raw(self) -> Any:
        match self.input:
            case QCheckBox():
                return bool(self.input.isChecked())
            case QComboBox():
                return self.input.currentText()
            case QLineEdit():
                return self.input.text().strip()
            case unknown:
                assert_never(unknown)

    def differs_from(self, value: Any) -> bool:
        return bool(self.raw() != display_value(value))

    def set_note(self, note: str) -> None:
        self._note = note
        self.show_error(None)

    def show_error(self, error: str | None) -> None:
        """Show ``error`` (the SettingsError reason), or the field's note when there is none."""
        self.error = error
        text = error or self._note
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.message.setVisible(bool(text))

    def _browse(self) -> None:
        assert isinstance(self.input, QLineEdit)
        dialog = QFileDialog(self.widget, f"Choose {self.setting.help.split('(')[0].strip().rstrip('.')}")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if self.input.text():
            dialog.selectFile(self.input.text())
        dialog.fileSelected.connect(self.input.setText)
        dialog.open()  # never exec(): a nested loop inside the qasync loop hangs


class SettingsPanel(QWidget):
    """Emits ``applied`` after a successful Apply (the window refreshes its status)."""

    applied = Signal()
    keyRegenerated = Signal()

    def __init__(
        self,
        service: GatewayService,
        config_dir: Path,
        redactor: Redactor | None = None,
        parent: QWidget | None = None,
        *,
        start_mode: StartMode | None = None,
        credentials: Callable[[], CredentialView] | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.config_dir = config_dir
        self.redactor = redactor
        self.start_mode = start_mode
        self.credentials = credentials or (lambda: read_credentials(service))
        self.fields: dict[str, FieldEditor] = {}
        self._busy = False
        buttons = self._build_buttons()  # first: building the fields validates, which updates them
        self.fallback_notice = self._banner(WARNING_BANNER, "fallback_notice")
        self.guide = self._banner(INFO_BANNER, "first_run_guide")
        self.guide.setText(FIRST_RUN_GUIDE)
        self.guide.setTextFormat(Qt.TextFormat.RichText)

        body = QWidget()
        body_layout = QVBoxLayout(body)
        for widget in (self.fallback_notice, self.guide, self._build_login(), self._build_client_key()):
            body_layout.addWidget(widget)
        for group in dict.fromkeys(s.group for s in DECLARATIONS if s.group != LOGIN_GROUP):
            box = QGroupBox(group)
            form = QFormLayout(box)
            self._add_fields(form, group)
            if form.rowCount():
                body_layout.addWidget(box)
        body_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)

        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        self.fallback_notice.setVisible(False)
        self.guide.setVisible(False)
        self.revert()
        self.refresh_login()

    # ---- building ----------------------------------------------------------------------------------

    def _build_buttons(self) -> QHBoxLayout:
        self.status = QLabel()
        self.status.setObjectName("settings_status")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.revert)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.clicked.connect(self.apply_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        return buttons

    def _build_login(self) -> QGroupBox:
        """The login in use, the write-only refresh-token field, then the Credentials declarations."""
        login = QGroupBox("Kiro login")
        form = QFormLayout(login)
        self.login_state = QLabel("-")
        self.login_state.setObjectName("login_state")
        self.login_state.setWordWrap(True)
        self.login_state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Login in use", self.login_state)
        self.token_edit = QLineEdit()
        self.token_edit.setObjectName("refresh_token_input")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("Paste a Kiro refresh token to save it in the keyring")
        self.token_edit.textChanged.connect(self.validate)
        self.token_message = QLabel()
        self.token_message.setWordWrap(True)
        self.token_message.setVisible(False)
        form.addRow("Refresh token", self.token_edit)
        form.addRow("", self.token_message)
        self._add_fields(form, LOGIN_GROUP)
        return login

    def _build_client_key(self) -> QGroupBox:
        """The client API key: masked, with show, copy and regenerate."""
        box = QGroupBox("Client API key")
        layout = QVBoxLayout(box)
        self.key_notice = QLabel()
        self.key_notice.setWordWrap(True)
        self.key_notice.setVisible(False)
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("client_key")
        self.key_edit.setReadOnly(True)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key = QPushButton("Show")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(self._toggle_key)
        self.copy_key = QPushButton("Copy")
        self.copy_key.clicked.connect(self._copy_key)
        self.regenerate_key = QPushButton("Regenerate")
        self.regenerate_key.clicked.connect(self.confirm_regenerate)
        self.regenerate_box: QMessageBox | None = None
        self.keep_box: QMessageBox | None = None
        row = QHBoxLayout()
        for widget in (self.key_edit, self.show_key, self.copy_key, self.regenerate_key):
            row.addWidget(widget, 1 if widget is self.key_edit else 0)
        text = "Clients send it as <code>Authorization: Bearer …</code> or <code>x-api-key</code>."
        mode = self.start_mode
        if mode is not None:
            where = f" in <code>{html.escape(str(mode.folder))}</code>" if mode.from_folder else ""
            text += f" In a terminal{where}, <code>{html.escape(mode.hint('--print-key'))}</code> prints it."
        self.key_hint = QLabel(text)
        self.key_hint.setObjectName("client_key_hint")
        self.key_hint.setWordWrap(True)
        self.key_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_hint.setStyleSheet(NOTE_STYLE)
        layout.addWidget(self.key_notice)
        layout.addLayout(row)
        layout.addWidget(self.key_hint)
        return box

    @staticmethod
    def _banner(style: str, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setStyleSheet(style)
        label.setOpenExternalLinks(False)
        return label

    def _add_fields(self, form: QFormLayout, group: str) -> None:
        for setting in DECLARATIONS:
            if setting.group != group or setting.secret:
                continue
            editor = FieldEditor(setting, getattr(self.service.settings, setting.name), self.validate)
            self.fields[setting.name] = editor
            label = "" if setting.kind == "bool" else label_for(setting)
            form.addRow(label, editor.widget)
            form.addRow("", editor.message)
            if setting.kind != "bool":
                editor.widget.setToolTip(setting.help)
                hint = form.labelForField(editor.widget)
                if isinstance(hint, QLabel):
                    hint.setToolTip(setting.help)

    # ---- state ------------------------------------------------------------------------------------

    def revert(self) -> None:
        """Show the service's current settings again."""
        settings = self.service.settings
        for name, editor in self.fields.items():
            editor.set_value(getattr(settings, name))
            origin = settings.origins.get(name)
            editor.set_note(
                f"Set by {editor.setting.env} in {EXPLICIT_ORIGINS[origin]}, which wins over this window "
                "at the next start."
                if origin in EXPLICIT_ORIGINS
                else ""
            )
        self.token_edit.clear()
        token_origin = settings.origins.get("refresh_token")
        where = EXPLICIT_ORIGINS.get(token_origin or "")
        self.token_edit.setEnabled(where is None)
        if where is not None:
            self.token_edit.setPlaceholderText(f"REFRESH_TOKEN is set in {where}")
        self.validate()

    def reload_fields(self, names: list[str]) -> None:
        """Settings changed elsewhere (the tray's pin or strategy): show their new values."""
        settings = self.service.settings
        for name in names:
            editor = self.fields.get(name)
            if editor is not None:
                editor.set_value(getattr(settings, name))
        self.validate()

    def changed_values(self) -> dict[str, Any]:
        current = self.service.settings
        return {n: e.raw() for n, e in self.fields.items() if e.differs_from(getattr(current, n))}

    def validate(self) -> Settings | None:
        """Check the whole form; show each problem next to its field. Returns the candidate settings."""
        for editor in self.fields.values():
            editor.show_error(None)
        token_error = self._token_error()
        self.token_message.setText(token_error or "")
        self.token_message.setStyleSheet(ERROR_STYLE)
        self.token_message.setVisible(bool(token_error))
        candidate: Settings | None = None
        try:
            candidate = self.service.settings.with_values(**self.changed_values())
        except SettingsError as exc:
            setting = BY_ENV.get(exc.env)
            culprit = self.fields.get(setting.name) if setting else None
            if culprit is not None:
                culprit.show_error(exc.problem)
            else:
                self.status.setText(str(exc))
        ok = candidate is not None and token_error is None
        dirty = bool(self.changed_values()) or bool(self.token_edit.text().strip())
        self.apply_button.setEnabled(ok and dirty and not self._busy)
        self.revert_button.setEnabled(dirty and not self._busy)
        return candidate if ok else None

    def _token_error(self) -> str | None:
        token = self.token_edit.text()
        if not token.strip():
            return None
        try:
            validate_refresh_token(token, "Refresh token")
        except CredentialsError as exc:
            return exc.message
        return None

    def refresh_login(self) -> None:
        """Show the credential state and the client key (cheap: no I/O)."""
        service = self.service
        credentials = self.credentials()
        self.login_state.setText(credentials.sentence())
        self.login_state.setStyleSheet(ERROR_STYLE if credentials.problem else "")
        self.guide.setVisible(credentials.state == "missing")

        key = service.proxy_api_key
        if self.key_edit.text() != key:
            self.key_edit.setText(key)
        explicit_key = bool(service.settings.proxy_api_key)
        self.regenerate_key.setEnabled(not explicit_key and bool(key))
        self.regenerate_key.setToolTip(
            "PROXY_API_KEY is set explicitly; change it there."
            if explicit_key
            else "Make a new key; clients using the old one stop working."
        )
        self.copy_key.setEnabled(bool(key))
        if not key:
            self.key_notice.setText("The key is created when the gateway first starts.")
        elif service.proxy_key_generated:
            self.key_notice.setText(
                "A client key was generated for you. Copy it into your client's API key "
                "setting; it is saved in your keyring and stays the same across restarts."
            )
        else:
            self.key_notice.setText("")
        self.key_notice.setVisible(bool(self.key_notice.text()))

    async def refresh_store_notice(self) -> None:
        """Ask the secret store (blocking: keyring probe) where secrets go; show the fallback notice."""
        store = self.service.secret_store
        fallback = await asyncio.to_thread(lambda: store.is_fallback)
        if fallback:
            self.fallback_notice.setText(
                "<b>No OS keyring is available</b> on this system, so secrets (the client key and a "
                f"pasted refresh token) are kept in <code>{html.escape(str(store.fallback_path))}</code>, "
                "a file only your user can read. Install and unlock a keyring (GNOME Keyring, KWallet) "
                "to use it instead."
            )
        self.fallback_notice.setVisible(fallback)

    # ---- actions -----------------------------------------------------------------------------------

    def _toggle_key(self, shown: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key.setText("Hide" if shown else "Show")

    def _copy_key(self) -> None:
        if self.service.proxy_api_key:
            QGuiApplication.clipboard().setText(self.service.proxy_api_key)
            self.status.setText("Client key copied to the clipboard.")

    def confirm_regenerate(self) -> None:
        """Ask before replacing the key (``open()``, never ``exec()``: a nested loop hangs qasync)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Regenerate the client key?",
            "Make a new client API key? Clients using the current key stop working until they get the "
            "new one.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        confirm = box.addButton("Regenerate", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: self._regenerate_answered(box.clickedButton() is confirm))
        self.regenerate_box = box
        box.open()

    def _regenerate_answered(self, confirmed: bool) -> None:
        self.regenerate_box = None
        if confirmed:
            self.regenerate()
        else:
            self.status.setText("The client key was kept.")

    @async_slot()
    async def regenerate(self) -> None:
        await self.service.regenerate_proxy_key()
        self.refresh_login()
        self.status.setText("A new client key is in use; update your clients.")
        self.keyRegenerated.emit()

    @async_slot()
    async def apply_clicked(self) -> None:
        await self.apply()

    async def apply(self) -> bool:
        """Save and apply the form. Returns False (and shows why) when nothing could be applied."""
        new = self.validate()
        if new is None or self._busy:
            return False
        self._set_busy(True)
        try:
            return await self._apply(new)
        finally:
            self._set_busy(False)

    async def _apply(self, new: Settings) -> bool:
        service = self.service
        token = self.token_edit.text().strip()
        reset_login = False
        if token:
            if self.redactor is not None:
                self.redactor.add(token)
            try:
                await asyncio.to_thread(self._save_login, token, new)
            except SecretStoreError as exc:
                self.status.setText(f"The refresh token was not saved: {exc}")
                return False
            reset_login = True
            if new.refresh_token and new.origins.get("refresh_token") not in EXPLICIT_ORIGINS:
                new = replace(new, refresh_token=None)  # the saved login replaces an in-memory one
        edited = [s.name for s in new.changed(service.settings) if not s.secret]
        bind = [n for n in edited if n in BIND_SETTINGS]  # saved once the server could listen there
        if not await self._write_settings(new, [n for n in edited if n not in bind]):
            return False
        changed = new.changed(service.settings)
        failure = await self._apply_to_service(new)
        if reset_login and not any(s.applies == "reset_credentials" for s in changed):
            await service.accounts.reset()
        self.revert()
        self.refresh_login()
        labels = ", ".join(label_for(s) for s in changed if not s.secret)
        parts = [f"Applied {labels}." if labels else "", "Refresh token saved." if token else ""]
        self.status.setText(" ".join(p for p in parts if p) or "Nothing changed.")
        if bind and failure is not None:
            unsaved = ", ".join(label_for(BY_NAME[n]) for n in bind)
            self.status.setText(f"{failure.message} The new {unsaved} was not saved.")
            self.confirm_keep(new, bind, failure.message or "")
        elif bind and not await self._write_settings(new, bind):
            return False
        names = ", ".join(s.env for s in changed if not s.secret)
        log.info("settings applied%s", f": {names}" if names else "")
        self.applied.emit()
        return True

    async def _write_settings(self, new: Settings, names: list[str]) -> bool:
        try:
            await asyncio.to_thread(
                write_settings_file, self.config_dir / SETTINGS_FILE_NAME, new, names=names
            )
        except OSError as exc:
            self.status.setText(f"The settings file could not be written: {exc.strerror or exc}")
            return False
        return True

    async def _apply_to_service(self, new: Settings) -> ServiceStateChanged | None:
        """Apply; returns the failure when the server then could not listen (busy or forbidden port)."""
        failures: list[ServiceStateChanged] = []

        def seen(event: ServiceStateChanged) -> None:  # records only: widgets are updated by the caller
            if event.state == "failed" and event.reason in BIND_FAILURES:
                failures.append(event)

        self.service.state_changed.connect(seen)
        try:
            await self.service.apply_settings(new)
        finally:
            self.service.state_changed.disconnect(seen)
        return failures[-1] if failures else None

    def confirm_keep(self, new: Settings, names: list[str], why: str) -> None:
        """Ask whether to save a host or port the server could not listen on (``open()``, not ``exec()``)."""
        values = ", ".join(f"{label_for(BY_NAME[n])} {getattr(new, n)}" for n in names)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Keep the new server address?",
            f"{why}\nSave {values} in the settings anyway? Kiro Tray then tries it again at every start.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        keep = box.addButton("Keep it", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(box.addButton("Don't save", QMessageBox.ButtonRole.RejectRole))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: self._keep_answered(new, names, box.clickedButton() is keep))
        self.keep_box = box
        box.open()

    def _keep_answered(self, new: Settings, names: list[str], keep: bool) -> None:
        self.keep_box = None
        if keep:
            self.keep_unsaved(new, names)

    @async_slot()
    async def keep_unsaved(self, new: Settings, names: list[str]) -> None:
        if await self._write_settings(new, names):
            self.status.setText(f"Saved {', '.join(label_for(BY_NAME[n]) for n in names)}.")
            self.applied.emit()

    def _save_login(self, token: str, new: Settings) -> None:
        """Runs in a thread: the keyring blocks."""
        save_login(
            self.service.secret_store,
            refresh_token=token,
            profile_arn=new.profile_arn,
            region=new.kiro_region,
        )

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.validate()
