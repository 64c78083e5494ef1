"""The Accounts page: one row per Kiro account (quota bar, state and why, today's use, last used) and the
actions: add (refresh token, credentials file, API key, the Kiro IDE's or kiro-cli's login), rename,
enable/disable, remove (asks first), check now, pin.

Every action goes to :class:`~kiro_tray.gateway.accounts.AccountsRegistry` (Qt-free); the page shows the
registry's :meth:`~kiro_tray.gateway.accounts.AccountsRegistry.snapshot` again when the bridge says the
accounts changed. Dialogs are opened with ``open()``, never ``exec()`` (a nested loop hangs qasync).
"""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..gateway.accounts import AccountsRegistry, AccountsView, AccountView
from ..protocol.errors import CredentialsError
from ..upstream.account_book import BookType
from ..upstream.secret_store import SecretStoreError
from . import account_words
from .controller import AppController
from .slots import async_slot

AnyIndex = QModelIndex | QPersistentModelIndex
COLUMNS = ("Account", "State", "Credits", "Today", "Last used")
QUOTA_COLUMN = COLUMNS.index("Credits")
VIEW_ROLE = Qt.ItemDataRole.UserRole + 1
PROBLEM_COLOR = QColor("#c62828")
QUIET_COLOR = QColor("#6b7280")
PROBLEM_STATES = frozenset({"suspended", "login_expired"})
ADD_KINDS: tuple[tuple[BookType, str], ...] = (
    ("refresh_token", "Paste a refresh token…"),
    ("creds_file", "Credentials file…"),
    ("api_key", "Kiro API key…"),
    ("kiro_ide", "Import from the Kiro IDE…"),
    ("kiro_cli", "Import from kiro-cli…"),
)


def _today(view: AccountView) -> str:
    requests = f"{view.requests_today:,} request{'' if view.requests_today == 1 else 's'}"
    return f"{requests}, {view.credits_today:.2f} credits" if view.credits_today else requests


def _kind(view: AccountView) -> str:
    return f"{view.type or 'no login'}, {view.source}"


class AccountsModel(QAbstractTableModel):
    """The snapshot's accounts; a refresh with the same names announces changed cells only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view: AccountsView | None = None
        self._rows: tuple[AccountView, ...] = ()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        view = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == VIEW_ROLE:
            return view
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(view, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return view.reason if column == "State" else None
        if role == Qt.ItemDataRole.ForegroundRole and column == "State":
            if view.state in PROBLEM_STATES:
                return PROBLEM_COLOR
            return None if view.state == "available" else QUIET_COLOR
        active = self.view is not None and view.name == self.view.active
        if role == Qt.ItemDataRole.FontRole and column == "Account" and active:
            font = QApplication.font()
            font.setBold(True)
            return font
        return None

    def _text(self, view: AccountView, column: str) -> str:
        match column:
            case "Account":
                pinned = self.view is not None and self.view.pin == view.name
                return f"{view.name}{'  (pinned)' if pinned else ''}\n{_kind(view)}"
            case "State":
                text = account_words.state(view)
                return f"{text}\n{view.reason}" if view.reason and view.state != "available" else text
            case "Credits":
                return account_words.credits(view.usage) or "not read yet"
            case "Today":
                return _today(view)
            case _:
                return account_words.ago(view.last_used)

    def set_snapshot(self, snapshot: AccountsView) -> None:
        names = [v.name for v in snapshot.accounts]
        self.view = snapshot
        if names == [v.name for v in self._rows]:
            self._rows = snapshot.accounts
            if names:
                self.dataChanged.emit(self.index(0, 0), self.index(len(names) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._rows = snapshot.accounts
        self.endResetModel()

    def account_at(self, row: int) -> AccountView:
        return self._rows[row]


class QuotaBarDelegate(QStyledItemDelegate):
    """The Credits column: a bar of credits used against the plan's limit, the numbers on it (a bonus
    grant is named apart, in the text)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        view = index.data(VIEW_ROLE)
        usage = view.usage if isinstance(view, AccountView) else None
        if usage is None or usage.credits_used is None or not usage.credits_limit:
            super().paint(painter, option, index)
            return
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        rect = QRect(option.rect).adjusted(4, 6, -4, -6)
        if usage.bonus_credits:
            bonus = f"+ {account_words.number(usage.bonus_credits)} bonus"
            width = option.fontMetrics.horizontalAdvance(bonus) + 8
            painter.drawText(
                rect.adjusted(rect.width() - width, 0, 0, 0),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                bonus,
            )
            rect.setWidth(rect.width() - width)
        bar = QStyleOptionProgressBar()
        bar.rect = rect
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(min(1.0, usage.credits_used / usage.credits_limit) * 1000)
        bar.text = account_words.used_of(usage) or ""
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class AddAccountDialog(QDialog):
    """Name plus what this kind of login needs: a pasted secret, a file, or nothing (IDE / kiro-cli)."""

    def __init__(self, kind: BookType, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setWindowTitle(dict(ADD_KINDS)[kind].rstrip("…"))
        form = QFormLayout(self)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("account_name")
        self.name_edit.setPlaceholderText("work, home, …")
        form.addRow("Name", self.name_edit)
        self.secret_edit = QLineEdit()
        self.secret_edit.setObjectName("account_secret")
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("account_path")
        self.region_edit = QLineEdit()
        self.region_edit.setPlaceholderText("us-east-1")
        self.arn_edit = QLineEdit()
        self.arn_edit.setPlaceholderText("optional")
        match kind:
            case "refresh_token":
                self.secret_edit.setPlaceholderText("Kiro refresh token (kept in the keyring)")
                form.addRow("Refresh token", self.secret_edit)
                form.addRow("Region", self.region_edit)
                form.addRow("Profile ARN", self.arn_edit)
            case "api_key":
                self.secret_edit.setPlaceholderText("ksk_… (kept in the keyring)")
                form.addRow("API key", self.secret_edit)
            case "creds_file":
                browse = QPushButton("Browse…")
                browse.clicked.connect(self._browse)
                row = QHBoxLayout()
                row.addWidget(self.path_edit, 1)
                row.addWidget(browse)
                form.addRow("Credentials file", row)
            case "kiro_ide" | "kiro_cli":
                program = "the Kiro IDE" if kind == "kiro_ide" else "kiro-cli"
                note = QLabel(f"Uses the login {program} keeps (and renews); log in there first.")
                note.setWordWrap(True)
                form.addRow(note)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def _browse(self) -> None:
        dialog = QFileDialog(self, "Choose a Kiro credentials file")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.path_edit.setText)
        dialog.open()

    def path(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser() if text else None


class AccountsPanel(QWidget):
    """Emits ``done(message)`` when an action has finished (its result is on the status line)."""

    done = Signal(str)

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.registry: AccountsRegistry = controller.service.accounts
        self.model = AccountsModel(self)
        self.dialog: QDialog | QMessageBox | None = None  # the open question, if any (tests answer it)

        self.summary = QLabel()
        self.summary.setObjectName("accounts_summary")
        self.summary.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(QUOTA_COLUMN, QuotaBarDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() * 2 + 14)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for i, width in enumerate((200, 260, 240, 170)):
            header.resizeSection(i, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

        self.detail = QLabel()
        self.detail.setObjectName("account_detail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel()
        self.status.setObjectName("accounts_status")
        self.status.setWordWrap(True)

        self.add_button = QPushButton("Add account")
        self.add_menu = QMenu(self)
        for kind, label in ADD_KINDS:
            self.add_menu.addAction(label).triggered.connect(lambda _=False, k=kind: self.open_add(k))
        self.add_button.setMenu(self.add_menu)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.open_rename)
        self.enable_button = QPushButton("Disable")
        self.enable_button.setObjectName("enable_button")
        self.enable_button.clicked.connect(self._toggle_enabled)
        self.pin_button = QPushButton("Pin")
        self.pin_button.setObjectName("pin_button")
        self.pin_button.clicked.connect(self._toggle_pin)
        self.check_button = QPushButton("Check now")
        self.check_button.clicked.connect(self._check)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.confirm_remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        for button in (
            self.pin_button,
            self.enable_button,
            self.check_button,
            self.rename_button,
            self.remove_button,
        ):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.modelReset.connect(self._selection_changed)
        self.refresh()

    # ---- showing ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the registry's accounts now (cheap: no I/O); keeps the selection by name."""
        chosen = self.selected()
        snapshot = self.registry.snapshot()
        self.model.set_snapshot(snapshot)
        if chosen is not None:
            self.select(chosen.name)
        strategy = account_words.STRATEGY_WORDS.get(snapshot.strategy, snapshot.strategy)
        parts = [f"Strategy: {strategy}", f"pinned to {snapshot.pin}" if snapshot.pin else "automatic"]
        if snapshot.active:
            parts.append(f"next request goes to {snapshot.active}")
        if snapshot.pooled > 1 and not snapshot.can_serve:
            parts.append("no account can serve now")
        self.summary.setText(account_words.SEPARATOR.join(parts))
        self._selection_changed()

    def selected(self) -> AccountView | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.account_at(rows[0].row()) if rows else None

    def select(self, name: str) -> None:
        for row in range(self.model.rowCount()):
            if self.model.account_at(row).name == name:
                self.table.selectRow(row)
                return

    def _selection_changed(self, *_: object) -> None:
        view = self.selected()
        for button in (self.rename_button, self.enable_button, self.check_button, self.pin_button):
            button.setEnabled(view is not None)
        self.remove_button.setEnabled(view is not None and view.removable)
        self.rename_button.setEnabled(view is not None and view.renamable)
        if view is None:
            self.detail.setText("Select an account to manage it.")
            return
        pinned = self.model.view is not None and self.model.view.pin == view.name
        self.pin_button.setText("Unpin" if pinned else "Pin")
        self.pin_button.setEnabled(view.enabled)
        self.enable_button.setText("Disable" if view.enabled else "Enable")
        self.check_button.setEnabled(view.enabled)
        self.detail.setText(self._describe(view))

    @staticmethod
    def _describe(view: AccountView) -> str:
        usage = view.usage
        lines = [account_words.SEPARATOR.join([view.name, *account_words.quota(view)])]
        if usage.bonus_credits:
            lines.append(f"Bonus credits: {account_words.number(usage.bonus_credits)} (apart from the plan)")
        if usage.overage:
            lines.append(f"Overage: {usage.overage}")
        state = account_words.state(view)
        lines.append(f"State: {state}" + (f" ({view.reason})" if view.reason else ""))
        lines.append(f"Requests: {view.requests_total:,} since start, {view.failovers_total:,} failed over")
        return "\n".join(lines)

    # ---- actions ---------------------------------------------------------------------------------

    def open_add(self, kind: BookType) -> None:
        dialog = AddAccountDialog(kind, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._add_accepted(dialog))
        dialog.finished.connect(self._dialog_closed)
        self.dialog = dialog
        dialog.open()

    def _add_accepted(self, dialog: AddAccountDialog) -> None:
        self.add(
            dialog.kind,
            dialog.name_edit.text(),
            dialog.secret_edit.text().strip() or None,
            dialog.region_edit.text().strip() or None,
            dialog.arn_edit.text().strip() or None,
            dialog.path(),
        )

    @async_slot(str, str, object, object, object, object)
    async def add(
        self,
        kind: BookType,
        name: str,
        secret: str | None,
        region: str | None,
        profile_arn: str | None,
        path: Path | None,
    ) -> None:
        async def run() -> str:
            account = await self.registry.add(
                name, kind, secret=secret, region=region, profile_arn=profile_arn, path=path
            )
            self.refresh()
            self.select(account.name)
            return f"Added the account {account.name!r}."

        await self._run(run())

    def open_rename(self) -> None:
        view = self.selected()
        if view is None:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename the account")
        dialog.setLabelText(f"New name for {view.name}:")
        dialog.setTextValue(view.name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda text: self.rename(view.name, text))
        dialog.finished.connect(self._dialog_closed)
        self.dialog = dialog
        dialog.open()

    @async_slot(str, str)
    async def rename(self, name: str, new_name: str) -> None:
        async def run() -> str:
            await self.registry.rename(name, new_name)
            if self.registry.settings.account_pin.strip() == name:
                await self.controller.apply_account_choice(account_pin=new_name.strip())
            self.refresh()
            self.select(new_name.strip())
            return f"Renamed {name!r} to {new_name.strip()!r}."

        await self._run(run())

    def confirm_remove(self) -> None:
        view = self.selected()
        if view is None or not view.removable:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Remove the account?",
            f"Remove the Kiro account {view.name!r} from Kiro Tray? Its saved login is deleted from the "
            "keyring; the Kiro account itself is not touched.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        confirm = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: self._remove_answered(view.name, box.clickedButton() is confirm))
        self.dialog = box
        box.open()

    def _remove_answered(self, name: str, confirmed: bool) -> None:
        self.dialog = None
        if confirmed:
            self.remove(name)
        else:
            self.status.setText(f"The account {name!r} was kept.")

    @async_slot(str)
    async def remove(self, name: str) -> None:
        async def run() -> str:
            await self.registry.remove(name)
            if self.registry.settings.account_pin.strip() == name:
                await self.controller.apply_account_choice(account_pin="")
            self.refresh()
            return f"Removed the account {name!r}."

        await self._run(run())

    def _toggle_enabled(self) -> None:
        view = self.selected()
        if view is not None:
            self.set_enabled(view.name, not view.enabled)

    @async_slot(str, bool)
    async def set_enabled(self, name: str, enabled: bool) -> None:
        async def run() -> str:
            await self.registry.set_enabled(name, enabled)
            self.refresh()
            return f"{'Enabled' if enabled else 'Disabled'} the account {name!r}."

        await self._run(run())

    def _toggle_pin(self) -> None:
        view = self.selected()
        if view is None:
            return
        pinned = self.model.view is not None and self.model.view.pin == view.name
        self.pin(view.name if not pinned else "")

    @async_slot(str)
    async def pin(self, name: str) -> None:
        async def run() -> str:
            await self.controller.apply_account_choice(account_pin=name)
            self.refresh()
            return f"Every request goes to {name} while it can." if name else "Accounts chosen automatically."

        await self._run(run())

    def _check(self) -> None:
        view = self.selected()
        if view is not None:
            self.check(view.name)

    @async_slot(str)
    async def check(self, name: str) -> None:
        async def run() -> str:
            self.status.setText(f"Checking {name}…")
            [account] = await self.registry.check(name)
            self.refresh()
            return f"Checked {name}: {account_words.state(account.view())}."

        await self._run(run())

    async def _run(self, action: Coroutine[Any, Any, str]) -> None:
        """Run one action; its result, or why it failed, goes to the status line."""
        try:
            message = await action
        except (CredentialsError, SecretStoreError) as exc:
            message = getattr(exc, "message", None) or str(exc)
        except OSError as exc:  # the accounts list could not be written
            message = f"The accounts list could not be saved: {exc.strerror or exc}"
        self.status.setText(message)
        self.done.emit(message)

    def _dialog_closed(self, *_: object) -> None:
        self.dialog = None
