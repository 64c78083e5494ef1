"""The tray icon: state at a glance, a tooltip with today's counts, and a menu rebuilt on every open."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from .controller import AppController
from .icons import IconState, tray_icon


class Tray(QObject):
    """Wraps a ``QSystemTrayIcon``; shown only where a system tray exists."""

    def __init__(self, controller: AppController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.shown_state: IconState | None = None
        controller.changed.connect(self.refresh)
        controller.notified.connect(self._notify)
        self.refresh()
        self.rebuild_menu()

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> bool:
        """Show the icon; False where no system tray exists (the window is then the way in)."""
        if not self.available():
            return False
        self.icon.show()
        return True

    def hide(self) -> None:
        self.icon.hide()

    def close(self) -> None:
        self.icon.hide()
        self.menu.deleteLater()

    def refresh(self) -> None:
        state = self.controller.icon_state()
        if state != self.shown_state:
            self.shown_state = state
            self.icon.setIcon(tray_icon(state))
        self.icon.setToolTip("Kiro Tray\n" + "\n".join(self.controller.status_lines()))

    def rebuild_menu(self) -> None:
        controller = self.controller
        service = controller.service
        menu = self.menu
        menu.clear()
        for line in controller.status_lines():
            status = menu.addAction(line)
            status.setEnabled(False)
        menu.addSeparator()
        running = service.state in ("running", "starting")
        toggle = menu.addAction("Stop server" if running else "Start server")
        toggle.setObjectName("toggle")
        toggle.triggered.connect(controller.toggle)
        copy_url = menu.addAction("Copy base URL")
        copy_url.setEnabled(service.url is not None)
        copy_url.triggered.connect(controller.copy_url)
        copy_key = menu.addAction("Copy API key")
        copy_key.setEnabled(bool(service.proxy_api_key))
        copy_key.triggered.connect(controller.copy_key)
        menu.addSeparator()
        menu.addAction("Open window").triggered.connect(lambda: controller.show_window(""))
        menu.addAction("Settings…").triggered.connect(controller.show_settings)
        open_logs = menu.addAction("Open log folder")
        open_logs.setEnabled(controller.log_dir is not None)
        open_logs.triggered.connect(controller.open_log_folder)
        login = menu.addAction("Start at login")
        login.setCheckable(True)
        login.setChecked(controller.autostart_enabled)
        login.toggled.connect(controller.set_autostart)
        menu.addSeparator()
        menu.addAction("Quit Kiro Tray").triggered.connect(controller.quit)

    def action(self, text: str) -> QAction:
        """The menu entry whose text starts with ``text`` (tests and the end-to-end run use it)."""
        for action in self.menu.actions():
            if action.text().startswith(text):
                return action
        raise KeyError(text)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.controller.show_window("")

    def _notify(self, title: str, message: str) -> None:
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            icon = QSystemTrayIcon.MessageIcon.Warning
            self.icon.showMessage(title, message, icon, 8000)
