"""The main window: Requests, Accounts, Metrics, Log and Settings tabs, and a status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QSizePolicy, QTabWidget, QWidget

from ..logging_setup import LoggingSetup
from .accounts_view import AccountsPanel
from .controller import AppController
from .icons import app_icon
from .log_view import LogPanel
from .metrics_view import MetricsPanel
from .requests_view import RequestsModel, RequestsPanel
from .settings_view import SettingsPanel

WINDOW_STATE_FILE = "window.ini"
METRICS_REFRESH_MS = 1000
NOTICE_MS = 15000
STATUS_SEPARATOR = "   ·   "


class ElidedLabel(QLabel):
    """One line that shrinks with the window: elided ("…") to the width it has, the full text as tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, width))


class MainWindow(QMainWindow):
    def __init__(
        self,
        controller: AppController,
        logging_setup: LoggingSetup | None,
        config_dir: Path,
        *,
        quit_on_close: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.config_dir = config_dir
        self.quit_on_close = quit_on_close
        service = controller.service
        bridge = controller.bridge
        self.setWindowTitle("Kiro Tray")
        self.setWindowIcon(app_icon())

        self.requests_model = RequestsModel(parent=self)
        self.requests_model.add_records(service.store)
        self.requests = RequestsPanel(self.requests_model)
        self.accounts = AccountsPanel(controller)
        self.metrics = MetricsPanel()
        ring_lines = logging_setup.ring.lines if logging_setup else []
        self.log = LogPanel(ring_lines, logging_setup.file_path if logging_setup else None)
        self.settings = SettingsPanel(
            service,
            config_dir,
            logging_setup.redactor if logging_setup else None,
            start_mode=controller.start_mode,
            credentials=lambda: controller.credentials,
        )
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.requests, "Requests")
        self.tabs.addTab(self.accounts, "Accounts")
        self.tabs.addTab(self.metrics, "Metrics")
        self.tabs.addTab(self.log, "Log")
        self.tabs.addTab(self.settings, "Settings")
        self.setCentralWidget(self.tabs)

        self.state_label = ElidedLabel()
        self.state_label.setObjectName("state_label")
        self.notice: str | None = None  # a notification, shown in place of the status for a while
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.setInterval(NOTICE_MS)
        self._notice_timer.timeout.connect(self._notice_expired)
        self.toggle_button = QPushButton()
        self.toggle_button.setObjectName("toggle_button")
        self.toggle_button.clicked.connect(controller.toggle)
        self.copy_url_button = QPushButton("Copy base URL")
        self.copy_url_button.clicked.connect(controller.copy_url)
        status = self.statusBar()
        status.addWidget(self.state_label, 1)
        status.addPermanentWidget(self.copy_url_button)
        status.addPermanentWidget(self.toggle_button)

        self._build_menu()

        bridge.recordsAdded.connect(self.requests_model.add_records)
        bridge.recordsUpdated.connect(self.requests_model.update_records)
        bridge.storeCleared.connect(self.requests_model.clear)
        bridge.logAppended.connect(self.log.append_lines)
        controller.settingsChanged.connect(self.settings.reload_fields)
        self.requests.clearRequested.connect(service.store.clear)
        self.settings.applied.connect(self.refresh)
        controller.changed.connect(self.refresh)
        controller.notified.connect(self._notified)
        controller.showWindowRequested.connect(self.bring_forward)

        self._metrics_timer = QTimer(self)
        self._metrics_timer.setInterval(METRICS_REFRESH_MS)
        self._metrics_timer.timeout.connect(self.refresh_metrics)
        self.resize(1000, 680)
        self.restore_state()
        self.refresh()

    def _build_menu(self) -> None:
        """The window's own way to what the tray menu offers (where there is no tray it is the only way)."""
        controller = self.controller
        menu = self.menuBar().addMenu("&Kiro Tray")
        self.copy_key_action = menu.addAction("Copy API key")
        self.copy_key_action.triggered.connect(controller.copy_key)
        menu.addAction("Open log folder").triggered.connect(controller.open_log_folder)
        self.autostart_action = menu.addAction("Start at login")
        self.autostart_action.setObjectName("autostart_action")
        self.autostart_action.setCheckable(True)
        self.autostart_action.triggered.connect(self._autostart_clicked)  # user clicks only, not refresh()
        menu.addSeparator()
        menu.addAction("Quit Kiro Tray").triggered.connect(controller.quit)

    def _autostart_clicked(self) -> None:
        self.controller.set_autostart(self.autostart_action.isChecked())

    # ---- refreshing ------------------------------------------------------------------------------

    def refresh(self) -> None:
        service = self.controller.service
        status = STATUS_SEPARATOR.join(self.controller.status_lines())
        self.state_label.set_full_text(f"{self.notice}{STATUS_SEPARATOR}{status}" if self.notice else status)
        running = service.state in ("running", "starting")
        self.toggle_button.setText("Stop server" if running else "Start server")
        self.copy_url_button.setEnabled(service.url is not None)
        self.copy_key_action.setEnabled(bool(service.proxy_api_key))
        self.autostart_action.setChecked(self.controller.autostart_enabled)
        self.settings.refresh_login()
        self.accounts.refresh()

    def refresh_metrics(self) -> None:
        self.metrics.refresh(self.controller.service.metrics.snapshot())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_metrics()
        self._metrics_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self._metrics_timer.stop()
        super().hideEvent(event)

    def _notified(self, title: str, message: str) -> None:
        self.notice = f"{title}: {message}"
        self._notice_timer.start()
        self.refresh()

    def _notice_expired(self) -> None:
        self.notice = None
        self.refresh()

    # ---- showing ---------------------------------------------------------------------------------

    def show_tab(self, tab: str) -> None:
        widget = {
            "requests": self.requests,
            "accounts": self.accounts,
            "metrics": self.metrics,
            "log": self.log,
            "settings": self.settings,
        }.get(tab)
        if widget is not None:
            self.tabs.setCurrentWidget(widget)

    def bring_forward(self, tab: str = "") -> None:
        self.show_tab(tab)
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        if self.quit_on_close:
            self.controller.quit()
        event.accept()

    # ---- geometry (QSettings holds geometry only, never a secret) ---------------------------------

    def _qsettings(self) -> QSettings:
        return QSettings(str(self.config_dir / WINDOW_STATE_FILE), QSettings.Format.IniFormat)

    def save_state(self) -> None:
        store = self._qsettings()
        store.setValue("geometry", self.saveGeometry())
        store.setValue("tab", self.tabs.currentIndex())
        store.sync()

    def restore_state(self) -> None:
        store = self._qsettings()
        geometry = store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        tab = store.value("tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(str(tab)))
