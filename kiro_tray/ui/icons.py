"""Tray and window icons: PNGs from ``resources/icons`` when shipped, otherwise drawn with QPainter."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

IconState = Literal["stopped", "running", "busy", "problem"]

COLORS: dict[IconState, str] = {
    "stopped": "#8a8f98",
    "running": "#2e9d5b",
    "busy": "#2f7fd8",
    "problem": "#d9822b",
}


def resource_dirs() -> list[Path]:
    """Where shipped icons may live: a PyInstaller bundle, the package, the source checkout."""
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "resources" / "icons", here.parents[1] / "resources" / "icons"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        dirs.insert(0, Path(bundle) / "resources" / "icons")
    return dirs


def tray_icon(state: IconState) -> QIcon:
    for directory in resource_dirs():
        base = directory / f"tray-{state}.png"
        if base.is_file():
            icon = QIcon(str(base))
            double = directory / f"tray-{state}@2x.png"
            if double.is_file():
                icon.addFile(str(double))
            return icon
    return drawn_icon(state)


def drawn_icon(state: IconState) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 32, 48, 64, 128):
        icon.addPixmap(draw_pixmap(state, size))
    return icon


def draw_pixmap(state: IconState, size: int) -> QPixmap:
    """A rounded tile in the state's colour with a white gateway mark (two arrows through a gate)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    margin = size * 0.06
    tile = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(COLORS[state]))
    painter.drawRoundedRect(tile, size * 0.22, size * 0.22)

    pen = QPen(QColor("white"), max(1.5, size * 0.09))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    s = size
    # a "K": the stem and two strokes meeting at the middle
    painter.drawLine(QPointF(s * 0.34, s * 0.26), QPointF(s * 0.34, s * 0.74))
    path = QPainterPath(QPointF(s * 0.68, s * 0.26))
    path.lineTo(QPointF(s * 0.40, s * 0.50))
    path.lineTo(QPointF(s * 0.68, s * 0.74))
    painter.drawPath(path)
    if state == "problem":
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#b3261e"))
        dot = s * 0.30
        painter.drawEllipse(QRectF(s - dot - margin * 0.5, margin * 0.5, dot, dot))
    elif state == "busy":
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("white"))
        dot = s * 0.12
        painter.drawEllipse(QRectF(s * 0.74, s * 0.74, dot, dot))
    painter.end()
    return pixmap


def app_icon() -> QIcon:
    """The application icon (window, task switcher): the shipped PNGs, else the drawn running icon."""
    icon = QIcon()
    for directory in resource_dirs():
        for size in (256, 512):
            path = directory.parent / f"kiro-tray-{size}.png"
            if path.is_file():
                icon.addFile(str(path))
        if not icon.isNull():
            return icon
    return drawn_icon("running")
