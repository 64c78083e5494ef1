"""The metrics panel: totals, latency percentiles, per-model counts and a requests-per-minute chart.

The chart is painted with QPainter: QtCharts is not part of PySide6-Essentials, and sixty bars do not
justify a charting dependency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

BAR_COLOR = QColor("#2f7fd8")


class RequestsPerMinuteChart(QWidget):
    """Bars for the last 60 minutes (oldest left), a max label and a time axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: list[int] = [0] * 60
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(520, 170)

    def set_values(self, values: Sequence[int]) -> None:
        values = list(values)[-60:]
        values = [0] * (60 - len(values)) + values
        if values != self.values:
            self.values = values
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.WindowText)
        grid_color = QColor(text_color)
        grid_color.setAlpha(50)
        metrics = self.fontMetrics()
        peak = max(self.values) or 1
        left = metrics.horizontalAdvance(str(peak)) + 8
        bottom = metrics.height() + 6
        plot = QRectF(left, 6, self.width() - left - 6, self.height() - bottom - 8)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))

        painter.setPen(QPen(grid_color, 1))
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):  # horizontal grid
            y = plot.bottom() - plot.height() * fraction
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        for minutes in (15, 30, 45):  # vertical grid every quarter hour
            x = plot.left() + plot.width() * minutes / 60
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        painter.setPen(text_color)
        painter.drawText(
            QRectF(0, plot.top() - 2, left - 4, metrics.height()), Qt.AlignmentFlag.AlignRight, str(peak)
        )
        painter.drawText(
            QRectF(0, plot.bottom() - metrics.height() + 2, left - 4, metrics.height()),
            Qt.AlignmentFlag.AlignRight,
            "0",
        )
        axis_y = plot.bottom() + 4
        for minutes_ago, align in (
            (60, Qt.AlignmentFlag.AlignLeft),
            (30, Qt.AlignmentFlag.AlignHCenter),
            (0, Qt.AlignmentFlag.AlignRight),
        ):
            label = "now" if minutes_ago == 0 else f"-{minutes_ago} min"
            x = plot.left() + plot.width() * (60 - minutes_ago) / 60
            width = metrics.horizontalAdvance(label) + 4
            anchor = {Qt.AlignmentFlag.AlignLeft: x, Qt.AlignmentFlag.AlignHCenter: x - width / 2}.get(
                align, x - width
            )
            painter.drawText(QRectF(anchor, axis_y, width, metrics.height()), align, label)

        slot = plot.width() / len(self.values)
        gap = min(2.0, slot * 0.25)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BAR_COLOR)
        for i, value in enumerate(self.values):
            if value <= 0:
                continue
            height = max(1.0, plot.height() * value / peak)
            painter.drawRect(
                QRectF(plot.left() + i * slot + gap / 2, plot.bottom() - height, slot - gap, height)
            )
        painter.end()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


class MetricsPanel(QWidget):
    """Call :meth:`refresh` with :meth:`Metrics.snapshot` output (the window does so on a timer)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[str, QLabel] = {}

        def form(title: str, rows: Sequence[tuple[str, str]]) -> QGroupBox:
            box = QGroupBox(title)
            layout = QFormLayout(box)
            layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
            for key, caption in rows:
                label = QLabel("-")
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.labels[key] = label
                layout.addRow(caption, label)
            return box

        totals = form(
            "Requests",
            (
                ("total", "Total"),
                ("today", "Today"),
                ("errors", "Errors"),
                ("error_rate", "Error rate"),
                ("active", "Active streams"),
                ("in_flight", "In flight"),
            ),
        )
        latency = form(
            "Latency (recent)",
            (
                ("fb_p50", "First byte p50"),
                ("fb_p95", "First byte p95"),
                ("total_p50", "Total p50"),
                ("total_p95", "Total p95"),
            ),
        )
        usage = form(
            "Usage",
            (
                ("tokens_in", "Tokens in (est.)"),
                ("tokens_out", "Tokens out (est.)"),
                ("credits", "Credits"),
                ("retries", "Retries"),
                ("refreshes", "Token refreshes"),
            ),
        )

        self.models = QTableWidget(0, 2)
        self.models.setHorizontalHeaderLabels(["Model", "Requests"])
        self.models.verticalHeader().setVisible(False)
        self.models.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.models.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.models.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.models.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        models_box = QGroupBox("By model")
        QVBoxLayout(models_box).addWidget(self.models)

        self.chart = RequestsPerMinuteChart()
        self.chart_box = QGroupBox("Requests per minute, last hour")
        QVBoxLayout(self.chart_box).addWidget(self.chart)

        grid = QGridLayout()
        grid.addWidget(totals, 0, 0)
        grid.addWidget(latency, 0, 1)
        grid.addWidget(usage, 0, 2)
        top = QHBoxLayout()
        top.addLayout(grid, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        bottom = QHBoxLayout()
        bottom.addWidget(self.chart_box, 3)
        bottom.addWidget(models_box, 2)
        layout.addLayout(bottom, 1)

    def refresh(self, snapshot: Mapping[str, Any]) -> None:
        latency = snapshot.get("latency_ms", {})
        first_byte = latency.get("first_byte", {})
        total = latency.get("total", {})
        tokens = snapshot.get("tokens", {})
        values = {
            "total": f"{snapshot.get('requests_total', 0):,}",
            "today": f"{snapshot.get('requests_today', 0):,}",
            "errors": f"{snapshot.get('errors_total', 0):,}",
            "error_rate": f"{snapshot.get('error_rate', 0.0) * 100:.1f} %",
            "active": f"{snapshot.get('active_streams', 0):,}",
            "in_flight": f"{snapshot.get('in_flight', 0):,}",
            "fb_p50": _ms(first_byte.get("p50")),
            "fb_p95": _ms(first_byte.get("p95")),
            "total_p50": _ms(total.get("p50")),
            "total_p95": _ms(total.get("p95")),
            "tokens_in": f"{tokens.get('input', 0):,}",
            "tokens_out": f"{tokens.get('output', 0):,}",
            "credits": f"{snapshot.get('credits', 0.0):.4g}",
            "retries": f"{snapshot.get('retries', 0):,}",
            "refreshes": f"{snapshot.get('token_refreshes', 0):,}"
            f" ({snapshot.get('token_refresh_failures', 0)} failed)",
        }
        for key, text in values.items():
            if self.labels[key].text() != text:
                self.labels[key].setText(text)
        by_model = sorted(snapshot.get("requests_by_model", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        self.models.setRowCount(len(by_model))
        for row, (name, count) in enumerate(by_model):
            self._set_cell(row, 0, name)
            self._set_cell(row, 1, f"{count:,}", Qt.AlignmentFlag.AlignRight)
        per_minute = snapshot.get("requests_per_minute", [])
        self.chart.set_values(per_minute)
        self.chart_box.setTitle(f"Requests per minute, last hour ({sum(per_minute):,} in all)")

    def _set_cell(
        self, row: int, column: int, text: str, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft
    ) -> None:
        item = self.models.item(row, column)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
            self.models.setItem(row, column, item)
        if item.text() != text:
            item.setText(text)
