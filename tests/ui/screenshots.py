"""Screenshots for the README: each window tab, the settings, the first-run guide, the tray menu and a pool of
accounts (the Accounts page and the tray's Accounts submenu).

``test_screenshots.py`` drives real traffic through the fake Kiro first, then calls :func:`save_all`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication, QScrollArea, QWidget

from kiro_tray.ui.app import TrayApp

REPO = Path(__file__).resolve().parents[2]
#: Test runs write screenshots to a temporary folder; ``KIRO_TRAY_SCREENSHOTS=docs/screenshots`` refreshes the
#: README's pictures (so an ordinary run leaves the work tree clean).
OUT_DIR = Path(os.environ.get("KIRO_TRAY_SCREENSHOTS") or Path(tempfile.gettempdir()) / "kiro-tray-shots")
if not OUT_DIR.is_absolute():
    OUT_DIR = REPO / OUT_DIR
WINDOW_SIZE = (1040, 700)


def _settle(widget: QWidget) -> None:
    widget.ensurePolished()
    QApplication.processEvents()


def save_window_tabs(app: TrayApp, out_dir: Path = OUT_DIR) -> list[Path]:
    window = app.window
    window.resize(*WINDOW_SIZE)
    window.show()
    saved: list[Path] = []
    for name in ("requests", "accounts", "metrics", "log", "settings"):
        window.show_tab(name)
        window.refresh_metrics()
        _settle(window)
        path = out_dir / f"window-{name}.png"
        window.grab().save(str(path))
        saved.append(path)
    return saved


def save_settings_page(app: TrayApp, name: str, out_dir: Path = OUT_DIR) -> Path:
    """The whole settings page, unscrolled (the window shows its top part)."""
    scroll = app.window.settings.findChild(QScrollArea)
    assert scroll is not None
    body = scroll.widget()
    body.resize(WINDOW_SIZE[0] - 40, body.sizeHint().height())
    _settle(body)
    path = out_dir / f"{name}.png"
    body.grab().save(str(path))
    scroll.setWidget(body)  # hand it back, sized by the scroll area again
    return path


def save_tray_menu(app: TrayApp, out_dir: Path = OUT_DIR) -> Path:
    menu = app.tray.menu
    menu.aboutToShow.emit()
    menu.adjustSize()
    _settle(menu)
    path = out_dir / "tray-menu.png"
    menu.grab().save(str(path))
    return path


def save_accounts(app: TrayApp, out_dir: Path = OUT_DIR) -> list[Path]:
    """A pool: the window's Accounts page (first account selected) and the tray's Accounts submenu."""
    window = app.window
    window.resize(*WINDOW_SIZE)
    window.show()
    window.show_tab("accounts")
    window.accounts.refresh()
    window.accounts.table.selectRow(0)
    _settle(window)
    page = out_dir / "accounts-page.png"
    window.grab().save(str(page))
    menu = app.tray.accounts_menu
    app.tray.menu.aboutToShow.emit()
    menu.adjustSize()
    _settle(menu)
    submenu = out_dir / "tray-accounts.png"
    menu.grab().save(str(submenu))
    return [page, submenu]
