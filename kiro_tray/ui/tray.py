"""The tray icon: state at a glance, a tooltip with the active account and today's counts, and a menu rebuilt
on every open (with an Accounts submenu: every account's state, pin one or go automatic, the strategy)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..gateway.accounts import STRATEGIES
from . import account_words
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
        # Kept across rebuilds (clear() removes their entries; the menus themselves are reused).
        self.accounts_menu = QMenu("Accounts")
        self.strategy_menu = QMenu("Strategy")
        self._pins = QActionGroup(self.accounts_menu)
        self._strategies = QActionGroup(self.strategy_menu)
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
        self.accounts_menu.deleteLater()
        self.strategy_menu.deleteLater()

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
        self.rebuild_accounts_menu()
        menu.addMenu(self.accounts_menu)
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

    def rebuild_accounts_menu(self) -> None:
        controller = self.controller
        accounts = controller.accounts
        menu = self.accounts_menu
        menu.clear()
        strategy = account_words.STRATEGY_WORDS.get(accounts.strategy, accounts.strategy)
        automatic = menu.addAction(f"Automatic ({strategy})")
        automatic.setCheckable(True)
        automatic.setChecked(accounts.pin is None)
        automatic.triggered.connect(lambda: controller.pin(""))
        self._pins.addAction(automatic)
        menu.addSeparator()
        for view in accounts.accounts:
            entry = menu.addAction(account_words.menu_entry(view))
            entry.setCheckable(True)
            entry.setChecked(view.name == accounts.pin)
            entry.setEnabled(view.enabled)
            entry.setToolTip(f"Serve every request with {view.name} while it can")
            if view.name == accounts.active:
                font = entry.font()
                font.setBold(True)
                entry.setFont(font)
            entry.triggered.connect(lambda _=False, name=view.name: controller.pin(name))
            self._pins.addAction(entry)
        if not accounts.accounts:
            menu.addAction("No Kiro account yet").setEnabled(False)
        menu.addSeparator()
        self.strategy_menu.clear()
        for name in STRATEGIES:
            choice = self.strategy_menu.addAction(account_words.STRATEGY_WORDS[name])
            choice.setCheckable(True)
            choice.setChecked(name == accounts.strategy)
            choice.triggered.connect(lambda _=False, name=name: controller.set_strategy(name))
            self._strategies.addAction(choice)
        menu.addMenu(self.strategy_menu)
        menu.addAction("Manage accounts…").triggered.connect(lambda: controller.show_window("accounts"))

    def action(self, text: str, menu: QMenu | None = None) -> QAction:
        """The entry of ``menu`` (the tray menu) whose text starts with ``text`` (tests and the end-to-end
        run use it)."""
        for action in (menu or self.menu).actions():
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
