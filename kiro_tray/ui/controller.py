"""What the tray menu and the window do: start/stop, copy, open, start at login, pin an account or choose
the strategy, notify, quit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication

from ..events import (
    AccountNotice,
    AccountNoticeKind,
    CredentialsChanged,
    QuotaExhaustedSeen,
    ServiceStateChanged,
)
from ..gateway.accounts import AccountsView
from ..gateway.service import GatewayService
from ..settings import SETTINGS_FILE_NAME, SettingsError, write_settings_file
from ..start_mode import StartMode, detect
from . import account_words, autostart
from .bridge import ServiceBridge
from .credentials import CredentialView, read_credentials
from .icons import IconState
from .slots import async_slot

log = logging.getLogger("kiro_tray.ui")

Tab = Literal["requests", "accounts", "metrics", "log", "settings"]
FAILURE_TITLES = {
    "port_busy": "Kiro Tray could not start: the port is busy",
    "already_running": "Kiro Tray is already running",
    "port_denied": "Kiro Tray could not start: port not allowed",
}
NOTICE_TITLES: dict[AccountNoticeKind, str] = {
    "failover": "Kiro account failed over",
    "quota_80": "Kiro credits at 80 %",
    "quota_95": "Kiro credits at 95 %",
    "login_needed": "Kiro login needed",
    "suspended": "Kiro account suspended",
}


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class AppController(QObject):
    """Owns no widgets; the tray and the window call it and listen to its signals."""

    showWindowRequested = Signal(str)  # a Tab, or "" for the current one
    notified = Signal(str, str)  # title, message
    changed = Signal()  # something the tray icon, tooltip or status line shows has changed
    settingsChanged = Signal(list)  # names of settings changed from the tray (pin, strategy)

    def __init__(
        self,
        service: GatewayService,
        bridge: ServiceBridge,
        *,
        log_dir: Path | None = None,
        quit_event: asyncio.Event | None = None,
        autostart_base: Path | None = None,
        start_mode: StartMode | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.start_mode = start_mode or detect()
        self.bridge = bridge
        self.log_dir = log_dir
        self.quit_event = quit_event
        self.autostart_base = autostart_base
        self.autostart_enabled = False
        self.quota_message: str | None = None
        self.credentials: CredentialView = read_credentials(service)
        self.last_notification: tuple[str, str] | None = None
        self._refresh_failures = service.metrics.refresh_failures
        bridge.stateChanged.connect(self._on_state)
        bridge.credentialsChanged.connect(self._on_credentials)
        bridge.quotaExhausted.connect(self._on_quota)
        bridge.quotaRestored.connect(self._on_quota_restored)
        bridge.accountNotice.connect(self._on_account_notice)
        bridge.flushed.connect(self.changed)

    # ---- what the tray shows ----------------------------------------------------------------------

    @property
    def accounts(self) -> AccountsView:
        """The accounts now (computed on each call: cooldowns end by themselves)."""
        return self.service.accounts.snapshot()

    def icon_state(self) -> IconState:
        service = self.service
        match service.state:
            case "failed":
                return "problem"
            case "stopped" | "stopping" | "starting":
                return "stopped"
            case "running":
                accounts = self.accounts
                if accounts.pooled > 1:  # a pool is in trouble only when no account can serve
                    if not accounts.can_serve:
                        return "problem"
                elif self.credentials.problem or self.quota_message:
                    return "problem"
                return "busy" if service.metrics.active_streams > 0 else "running"

    def status_lines(self) -> list[str]:
        service = self.service
        metrics = service.metrics
        lines: list[str] = []
        match service.state:
            case "running":
                lines.append(f"Running on {service.url}")
            case "starting":
                lines.append("Starting…")
            case "stopping":
                lines.append("Stopping…")
            case "stopped":
                lines.append("Stopped")
            case "failed":
                lines.append(service.last_message or "Failed to start")
        accounts = self.accounts
        active = accounts.named(accounts.active) if accounts.active else None
        if active is not None:
            lines.append(account_words.headline(active))
        lines.append(
            f"Today: {plural(metrics.requests_today, 'request')}, {plural(metrics.errors_today, 'error')}"
        )
        lines.append(f"Credentials: {self.credentials.words}")
        if self.quota_message:
            lines.append("Quota used up")
        return lines

    # ---- actions ----------------------------------------------------------------------------------

    async def start_service(self) -> None:
        self.quota_message = None
        await self.service.start()
        self._read_credentials()
        self.changed.emit()

    async def stop_service(self) -> None:
        await self.service.stop()
        self.changed.emit()

    @async_slot()
    async def start(self) -> None:
        await self.start_service()

    @async_slot()
    async def stop(self) -> None:
        await self.stop_service()

    @async_slot()
    async def toggle(self) -> None:
        if self.service.state in ("running", "starting"):
            await self.stop_service()
        else:
            await self.start_service()

    def copy_url(self) -> None:
        if self.service.url:
            QGuiApplication.clipboard().setText(self.service.url)

    def copy_key(self) -> None:
        if self.service.proxy_api_key:
            QGuiApplication.clipboard().setText(self.service.proxy_api_key)

    def show_window(self, tab: str = "") -> None:
        self.showWindowRequested.emit(tab)

    def show_settings(self) -> None:
        self.showWindowRequested.emit("settings")

    def open_log_folder(self) -> None:
        if self.log_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_dir)))

    async def load_autostart(self) -> None:
        self.autostart_enabled = await asyncio.to_thread(autostart.is_enabled, self.autostart_base)

    @async_slot(bool)
    async def set_autostart(self, enabled: bool) -> None:
        await self.apply_autostart(enabled)

    async def apply_autostart(self, enabled: bool) -> None:
        try:
            if enabled:
                folder = self.start_mode.folder  # the app's folder: its .env applies at login too
                await asyncio.to_thread(autostart.enable, None, self.autostart_base, folder=folder)
            else:
                await asyncio.to_thread(autostart.disable, self.autostart_base)
        except OSError as exc:
            self.notify("Start at login", f"Could not change the login item: {exc.strerror or exc}")
        await self.load_autostart()
        self.changed.emit()

    @async_slot(str)
    async def pin(self, name: str) -> None:
        """Serve every request with account ``name`` while it can (``""``: back to automatic)."""
        await self.apply_account_choice(account_pin=name)

    @async_slot(str)
    async def set_strategy(self, strategy: str) -> None:
        await self.apply_account_choice(account_strategy=strategy)

    async def apply_account_choice(self, **values: str) -> None:
        """Save and apply the pin or the strategy as the settings window would (live, no restart)."""
        service = self.service
        try:
            new = service.settings.with_values(**values)
        except SettingsError as exc:
            self.notify("Accounts", str(exc))
            return
        names = [s.name for s in new.changed(service.settings)]
        if not names:
            return
        path = service.secret_store.fallback_path.parent / SETTINGS_FILE_NAME
        try:
            await asyncio.to_thread(write_settings_file, path, new, names=names)
        except OSError as exc:
            self.notify("Accounts", f"The settings file could not be written: {exc.strerror or exc}")
            return
        await service.apply_settings(new)
        log.info("accounts: %s", ", ".join(f"{n}={getattr(new, n) or 'automatic'}" for n in names))
        self.settingsChanged.emit(names)
        self.changed.emit()

    def quit(self) -> None:
        if self.quit_event is not None:
            self.quit_event.set()

    def notify(self, title: str, message: str) -> None:
        self.last_notification = (title, message)
        log.info("notification: %s: %s", title, message)
        self.notified.emit(title, message)

    # ---- core events ------------------------------------------------------------------------------

    def _read_credentials(self) -> None:
        self.credentials = read_credentials(self.service)

    def _on_state(self, event: ServiceStateChanged) -> None:
        if event.state == "failed":
            title = FAILURE_TITLES.get(event.reason or "", "Kiro Tray could not start")
            self.notify(title, event.message or "See the log for details.")
        self._read_credentials()
        self.changed.emit()

    def _on_credentials(self, event: CredentialsChanged) -> None:
        before = self.credentials.state
        self._read_credentials()
        failures, self._refresh_failures = self._refresh_failures, self.service.metrics.refresh_failures
        if event.state == "invalid" and before != "invalid":
            self.notify("Kiro rejected the login", event.message or "Log in to Kiro again.")
        elif self._refresh_failures > failures:
            self.notify(
                "Kiro login could not be refreshed",
                event.message or "Kiro's sign-in service did not answer; the next request tries again.",
            )
        self.changed.emit()

    def _on_account_notice(self, event: AccountNotice) -> None:
        self.notify(NOTICE_TITLES[event.kind], event.message)  # the registry rate-limits these
        self.changed.emit()

    def _on_quota(self, event: QuotaExhaustedSeen) -> None:
        first = self.quota_message is None
        self.quota_message = event.message
        if first:
            self.notify("Kiro quota used up", event.message)
        self.changed.emit()

    def _on_quota_restored(self, event: object) -> None:
        # The account served a request again (a new month, or a new login).
        if self.quota_message:
            self.quota_message = None
            self.changed.emit()
