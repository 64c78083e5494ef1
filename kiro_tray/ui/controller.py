"""What the tray menu and the window do: start/stop, copy, open, start at login, notify, quit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication

from ..events import CredentialsChanged, QuotaExhaustedSeen, ServiceStateChanged
from ..gateway.service import GatewayService
from ..start_mode import StartMode, detect
from . import autostart
from .bridge import ServiceBridge
from .credentials import CredentialView, read_credentials
from .icons import IconState
from .slots import async_slot

log = logging.getLogger("kiro_tray.ui")

Tab = Literal["requests", "metrics", "log", "settings"]
FAILURE_TITLES = {
    "port_busy": "Kiro Tray could not start: the port is busy",
    "already_running": "Kiro Tray is already running",
    "port_denied": "Kiro Tray could not start: port not allowed",
}


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class AppController(QObject):
    """Owns no widgets; the tray and the window call it and listen to its signals."""

    showWindowRequested = Signal(str)  # a Tab, or "" for the current one
    notified = Signal(str, str)  # title, message
    changed = Signal()  # something the tray icon, tooltip or status line shows has changed

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
        bridge.flushed.connect(self.changed)

    # ---- what the tray shows ----------------------------------------------------------------------

    def icon_state(self) -> IconState:
        service = self.service
        match service.state:
            case "failed":
                return "problem"
            case "stopped" | "stopping" | "starting":
                return "stopped"
            case "running":
                if self.credentials.problem or self.quota_message:
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
