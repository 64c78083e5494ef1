"""The requests panel: a bounded, newest-first table of request records, filters and a detail pane."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..store import RequestRecord

MAX_ROWS = 1000
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
AnyIndex = QModelIndex | QPersistentModelIndex


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _int(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _credits(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _status(record: RequestRecord) -> str:
    return "…" if record.status is None else str(record.status)


def _account(record: RequestRecord) -> str:
    """``home``, or ``home ← work`` when ``work`` failed over to it first."""
    tried = [hop.split(":", 1)[0] for hop in record.hops]
    served = record.account or record.tenant or ""
    return " ← ".join([served, *reversed(tried)]) if tried else served


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    text: Callable[[RequestRecord], str]
    numeric: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("Time", lambda r: time.strftime("%H:%M:%S", time.localtime(r.started_at))),
    Column("API", lambda r: r.api),
    Column("Model", lambda r: r.model or ""),
    Column("Account", _account),
    Column("Stream", lambda r: "yes" if r.stream else "no"),
    Column("Status", _status, numeric=True),
    Column("First byte ms", lambda r: _ms(r.first_byte_ms), numeric=True),
    Column("Total ms", lambda r: _ms(r.total_ms), numeric=True),
    Column("Tokens in", lambda r: _int(r.input_tokens), numeric=True),
    Column("Tokens out", lambda r: _int(r.output_tokens), numeric=True),
    Column("Credits", lambda r: _credits(r.credits), numeric=True),
    Column("Client", lambda r: r.client),
)
COLUMN_INDEX = {column.title: i for i, column in enumerate(COLUMNS)}

ERROR_COLOR = QColor("#c62828")
PENDING_COLOR = QColor("#6b7280")


class RequestsModel(QAbstractTableModel):
    """Newest first, at most ``max_rows`` rows; additions, updates and trims announced precisely."""

    modelsSeen = Signal()

    def __init__(self, max_rows: int = MAX_ROWS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self._records: list[RequestRecord] = []  # newest (highest id) first
        self._keys: list[int] = []  # -id, ascending: bisect finds a record's row
        self.models: set[str] = set()

    # ---- Qt model API ------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._records):
            return None
        record = self._records[index.row()]
        column = COLUMNS[index.column()]
        match role:
            case Qt.ItemDataRole.DisplayRole:
                return column.text(record)
            case Qt.ItemDataRole.TextAlignmentRole:
                horizontal = Qt.AlignmentFlag.AlignRight if column.numeric else Qt.AlignmentFlag.AlignLeft
                return horizontal | Qt.AlignmentFlag.AlignVCenter
            case Qt.ItemDataRole.ForegroundRole:
                if record.status is None:
                    return PENDING_COLOR
                if record.status >= 400 or record.error:
                    return ERROR_COLOR
                return None
            case Qt.ItemDataRole.ToolTipRole:
                if column.title == "Account" and record.hops:
                    return "Failed over from " + "; ".join(record.hops)
                return record.error or None
            case _ if role == RECORD_ROLE:
                return record
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        if 0 <= section < len(COLUMNS):
            return COLUMNS[section].title
        return None

    # ---- feeding -----------------------------------------------------------------------------------

    def record_at(self, row: int) -> RequestRecord:
        return self._records[row]

    def row_of(self, record_id: int) -> int | None:
        row = bisect.bisect_left(self._keys, -record_id)
        if row < len(self._keys) and self._keys[row] == -record_id:
            return row
        return None

    def add_records(self, records: Iterable[RequestRecord]) -> None:
        """Add records (any order); newer than every shown record is the normal case."""
        unique = {r.id: r for r in records if self.row_of(r.id) is None}
        if not unique:
            return
        fresh = sorted(unique.values(), key=lambda r: r.id, reverse=True)[: self.max_rows]
        oldest_shown = self._records[0].id if self._records else 0
        if all(r.id > oldest_shown for r in fresh):
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self._records[:0] = fresh
            self._keys[:0] = [-r.id for r in fresh]
            self.endInsertRows()
        else:  # out of order: rare, rebuild
            self.beginResetModel()
            merged = sorted([*self._records, *fresh], key=lambda r: r.id, reverse=True)
            self._records = merged
            self._keys = [-r.id for r in merged]
            self.endResetModel()
        self._trim()
        self._note_models(fresh)

    def update_records(self, records: Iterable[RequestRecord]) -> None:
        rows = [row for r in records if (row := self.row_of(r.id)) is not None]
        if not rows:
            return
        self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(COLUMNS) - 1))
        self._note_models(self._records[row] for row in rows)

    def clear(self) -> None:
        self.beginResetModel()
        self._records.clear()
        self._keys.clear()
        self.models.clear()
        self.endResetModel()
        self.modelsSeen.emit()

    def _trim(self) -> None:
        extra = len(self._records) - self.max_rows
        if extra <= 0:
            return
        self.beginRemoveRows(QModelIndex(), self.max_rows, len(self._records) - 1)
        del self._records[self.max_rows :]
        del self._keys[self.max_rows :]
        self.endRemoveRows()

    def _note_models(self, records: Iterable[RequestRecord]) -> None:
        new = {r.model for r in records if r.model is not None and r.model not in self.models}
        if new:
            self.models |= new
            self.modelsSeen.emit()


StatusFilter = Literal["all", "in_flight", "ok", "errors"]
STATUS_FILTERS: tuple[tuple[StatusFilter, str], ...] = (
    ("all", "All statuses"),
    ("ok", "Succeeded"),
    ("errors", "Errors"),
    ("in_flight", "In flight"),
)


def status_matches(record: RequestRecord, wanted: StatusFilter) -> bool:
    match wanted:
        case "all":
            return True
        case "in_flight":
            return record.status is None
        case "ok":
            return record.status is not None and record.status < 400 and not record.error
        case "errors":
            return record.status is not None and (record.status >= 400 or bool(record.error))


class RequestsFilter(QSortFilterProxyModel):
    """Filters by status class and model; keeps the source's newest-first order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._status: StatusFilter = "all"
        self._model: str | None = None

    def set_status(self, status: StatusFilter) -> None:
        self._refilter(lambda: setattr(self, "_status", status))

    def set_model(self, model: str | None) -> None:
        self._refilter(lambda: setattr(self, "_model", model))

    def _refilter(self, change: Callable[[], None]) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        source = self.sourceModel()
        assert isinstance(source, RequestsModel)
        record = source.record_at(source_row)
        if self._model is not None and record.model != self._model:
            return False
        return status_matches(record, self._status)


def describe(record: RequestRecord) -> str:
    """The detail pane's text. Headers are redacted by the gateway before they reach a record."""
    lines = [
        f"{record.method} {record.path}",
        f"Request id: {record.request_id}",
        f"API: {record.api}    Model: {record.model or '-'}    Streaming: {'yes' if record.stream else 'no'}",
        f"Status: {_status(record)}    First byte: {_ms(record.first_byte_ms) or '-'} ms    "
        f"Total: {_ms(record.total_ms) or '-'} ms    Retries: {record.retries}",
        f"Tokens in/out (estimated): {_int(record.input_tokens) or '-'} / {_int(record.output_tokens) or '-'}"
        f"    Credits: {_credits(record.credits) or '-'}",
    ]
    if record.account:
        lines.append(f"Account: {record.account}")
    if record.hops:
        lines.append(f"Failed over from: {'; '.join(record.hops)}")
    if record.client:
        lines.append(f"Client: {record.client}")
    if record.tenant:
        lines.append(f"Tenant: {record.tenant}")
    if record.error:
        lines += ["", f"Error ({record.error_kind or 'error'}):", record.error]
    if record.headers:
        lines += ["", "Headers (redacted):", *(f"  {k}: {v}" for k, v in sorted(record.headers.items()))]
    if record.summary:
        lines += ["", "Request summary:", record.summary]
    if record.repairs:
        lines += ["", "History repairs applied:", *(f"  - {rule}" for rule in record.repairs)]
    if record.dropped_tools:
        lines += ["", "Tools dropped:", *(f"  - {tool}" for tool in record.dropped_tools)]
    if record.response_preview:
        lines += ["", "Response preview:", record.response_preview]
    return "\n".join(lines)


class RequestsPanel(QWidget):
    """Filter bar, table and detail pane. Fed by :class:`~kiro_tray.ui.bridge.ServiceBridge`."""

    clearRequested = Signal()

    def __init__(self, model: RequestsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = RequestsFilter(self)
        self.proxy.setSourceModel(model)

        self.status_filter = QComboBox()
        for key, label in STATUS_FILTERS:
            self.status_filter.addItem(label, key)
        self.model_filter = QComboBox()
        self.model_filter.setMinimumContentsLength(18)
        self.model_filter.addItem("All models", None)
        self.count_label = QLabel()
        self.clear_button = QPushButton("Clear")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show:"))
        bar.addWidget(self.status_filter)
        bar.addWidget(self.model_filter)
        bar.addStretch(1)
        bar.addWidget(self.count_label)
        bar.addWidget(self.clear_button)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for i, width in enumerate((70, 70, 170, 110, 55, 55, 95, 75, 75, 80, 60)):
            header.resizeSection(i, width)

        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select a request to see its details.")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.detail.setFont(mono)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter)

        self.status_filter.currentIndexChanged.connect(self._status_changed)
        self.model_filter.currentIndexChanged.connect(self._model_changed)
        self.clear_button.clicked.connect(self.clearRequested)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        model.modelsSeen.connect(self._refresh_models)
        model.rowsInserted.connect(self._update_count)
        model.rowsRemoved.connect(self._update_count)
        model.modelReset.connect(self._update_count)
        model.dataChanged.connect(self._data_changed)
        self._update_count()

    def selected_record(self) -> RequestRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        record = rows[0].data(RECORD_ROLE)
        return record if isinstance(record, RequestRecord) else None

    def _status_changed(self) -> None:
        self.proxy.set_status(self.status_filter.currentData())

    def _model_changed(self) -> None:
        self.proxy.set_model(self.model_filter.currentData())

    def _refresh_models(self) -> None:
        current = self.model_filter.currentData()
        self.model_filter.blockSignals(True)
        self.model_filter.clear()
        self.model_filter.addItem("All models", None)
        for name in sorted(self.model.models):
            self.model_filter.addItem(name, name)
        index = self.model_filter.findData(current) if current is not None else 0
        self.model_filter.setCurrentIndex(max(index, 0))
        self.model_filter.blockSignals(False)
        if index < 0:
            self._model_changed()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.model.rowCount()} of the last {self.model.max_rows} requests")

    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._show_detail()

    def _data_changed(self) -> None:
        if self.selected_record() is not None:
            self._show_detail()

    def _show_detail(self) -> None:
        record = self.selected_record()
        self.detail.setPlainText(describe(record) if record is not None else "")
