"""The log panel: a live tail of the (already redacted) logging ring buffer, with a level filter."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..logging_setup import LogLine

MAX_LINES = 2000
LEVELS = (
    ("Debug", logging.DEBUG),
    ("Info", logging.INFO),
    ("Warning", logging.WARNING),
    ("Error", logging.ERROR),
)


def format_line(line: LogLine) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line.created))
    return f"{stamp} {line.level_name:<7} {line.logger}: {line.message}"


class LogPanel(QWidget):
    def __init__(
        self, lines: Iterable[LogLine], file_path: Path | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._source = lines  # the ring buffer's deque: re-read when the filter changes
        self.file_path = file_path

        self.level = QComboBox()
        for label, level in LEVELS:
            self.level.addItem(label, level)
        self.level.setCurrentIndex(1)
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.copy_button = QPushButton("Copy")
        self.open_button = QPushButton("Open log file")
        self.open_button.setEnabled(file_path is not None)
        if file_path is not None:
            self.open_button.setToolTip(str(file_path))
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level:"))
        bar.addWidget(self.level)
        bar.addWidget(self.follow)
        bar.addStretch(1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.open_button)

        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(mono)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.text)

        self.level.currentIndexChanged.connect(self.reload)
        self.copy_button.clicked.connect(self.copy)
        self.open_button.clicked.connect(self.open_file)
        self.reload()

    @property
    def min_level(self) -> int:
        level = self.level.currentData()
        return int(level) if level is not None else logging.INFO

    def reload(self) -> None:
        self.text.clear()
        self.append_lines(list(self._source))

    def append_lines(self, lines: Iterable[LogLine]) -> None:
        shown = [format_line(line) for line in lines if line.level >= self.min_level]
        if not shown:
            return
        bar = self.text.verticalScrollBar()
        kept = bar.value()
        self.text.appendPlainText("\n".join(shown))
        bar.setValue(bar.maximum() if self.follow.isChecked() else kept)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())

    def open_file(self) -> None:
        if self.file_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.file_path)))
