"""Start-up of the tray app: one instance, one QApplication, one qasync loop, one gateway service.

``run_gui`` returns the process exit code. A second launch finds the first through a ``QLocalServer``
named after the user and the config folder, asks it to show its window, and exits 0. Quit (menu,
SIGINT/SIGTERM, or closing the window where no tray exists) sets an ``asyncio.Event``; :class:`TrayApp`
then stops the gateway (which ends streams), saves the window geometry and returns 0. Connecting Quit to
``app.quit()`` would stop the loop under the running coroutine.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import logging
import signal
import sys
from pathlib import Path

import qasync
from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication

from ..gateway.service import GatewayService
from ..logging_setup import setup_logging
from ..paths import AppPaths
from ..settings import Settings
from ..start_mode import StartMode, detect
from ..upstream.secret_store import SecretStore
from .bridge import ServiceBridge
from .controller import AppController
from .icons import app_icon
from .main_window import MainWindow
from .tray import Tray

log = logging.getLogger("kiro_tray.ui")

CONNECT_TIMEOUT_MS = 500


def instance_name(config_dir: Path) -> str:
    """One instance per user and config folder (tests run several side by side)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no USER variable and no password-database entry
        user = "user"
    digest = hashlib.sha256(f"{user}\0{config_dir.resolve()}".encode()).hexdigest()[:16]
    return f"kiro-tray-{digest}"


class SingleInstance(QObject):
    """Owns the local server of the first instance; ``activated`` fires when a later launch asks."""

    activated = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server: QLocalServer | None = None

    def ask_running_instance(self) -> bool:
        """True when another instance answered (and was asked to show its window). Runs before the loop."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.abort()
        return True

    def listen(self) -> bool:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            QLocalServer.removeServer(self.name)  # a stale socket left by a crash
            if not server.listen(self.name):
                log.warning("single-instance check unavailable: %s", server.errorString())
                return False
        server.newConnection.connect(self._on_connection)
        self.server = server
        return True

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _on_connection(self) -> None:
        """Any connection is a later launch asking for the window; nothing else listens on this name."""
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.abort()
            socket.deleteLater()
            self.activated.emit()


def run_gui(settings: Settings, paths: AppPaths, start_mode: StartMode) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Kiro Tray")
    app.setApplicationDisplayName("Kiro Tray")
    app.setDesktopFileName("kiro-tray")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)

    instance = SingleInstance(instance_name(paths.config_dir))
    if instance.ask_running_instance():
        print("Kiro Tray is already running; its window was brought forward.", flush=True)
        return 0
    instance.listen()
    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            return runner.run(_main(settings, paths, start_mode, instance))
    finally:
        instance.close()


async def _main(settings: Settings, paths: AppPaths, start_mode: StartMode, instance: SingleInstance) -> int:
    tray_app = TrayApp(settings, paths, start_mode=start_mode)
    instance.activated.connect(tray_app.another_launch)
    signals = _install_signal_handlers(tray_app.quit_event)
    try:
        return await tray_app.run()
    finally:
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.remove_signal_handler(sig)


class TrayApp:
    """The whole app on the running qasync loop: service, bridge, controller, tray and window."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        *,
        home: Path | None = None,
        autostart_base: Path | None = None,
        console: bool = True,
        start_mode: StartMode | None = None,
    ) -> None:
        self.paths = paths
        self.start_mode = start_mode or detect()
        self.quit_event = asyncio.Event()
        # Closing the last window must never quit Qt under the running loop: Quit goes through quit_event.
        QApplication.setQuitOnLastWindowClosed(False)
        self.logging_setup = setup_logging(settings.python_log_level, paths.log_dir, console=console)
        self.logging_setup.redactor.add(settings.proxy_api_key, settings.refresh_token)
        self.service = GatewayService(
            settings, secret_store=SecretStore(paths.config_dir), logging_setup=self.logging_setup, home=home
        )
        self.bridge = ServiceBridge(self.service, self.logging_setup.ring)
        self.controller = AppController(
            self.service,
            self.bridge,
            log_dir=paths.log_dir,
            quit_event=self.quit_event,
            autostart_base=autostart_base,
            start_mode=self.start_mode,
        )
        self.tray = Tray(self.controller)
        self.has_tray = self.tray.show()
        self.window = MainWindow(
            self.controller, self.logging_setup, paths.config_dir, quit_on_close=not self.has_tray
        )
        self._closed = False

    async def start(self) -> None:
        """Start the gateway; open the window where needed (first run, failure, no tray)."""
        await self.controller.load_autostart()
        await self.window.settings.refresh_store_notice()
        await self.controller.start_service()
        self.window.refresh()
        if self.service.state == "failed":
            self.window.bring_forward("log")
        elif self.controller.credentials.state == "missing":  # first run: the guide is on Settings
            self.window.bring_forward("settings")
        elif not self.has_tray:
            self.window.bring_forward("")
        if self.has_tray:
            log.info("tray icon shown")
        else:
            log.info("no system tray here: the window is the way in (closing it quits)")

    async def run(self) -> int:
        try:
            await self.start()
            await self.quit_event.wait()
        finally:
            await self.shutdown()
        return 0

    def another_launch(self) -> None:
        log.info("another launch asked for the window")
        self.window.bring_forward("")

    async def shutdown(self) -> None:
        """Stop the gateway (ending streams), save the window geometry, release everything. Idempotent."""
        if self._closed:
            return
        self._closed = True
        log.info("quitting")
        await self.service.stop()
        self.window.save_state()
        self.window.quit_on_close = False
        self.window.close()
        self.tray.close()
        self.bridge.close()
        self.logging_setup.close()


def _install_signal_handlers(quit_event: asyncio.Event) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, quit_event.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # Windows, or not the main thread: Quit in the menu still works
        installed.append(sig)
    return installed
