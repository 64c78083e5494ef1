"""Draw Kiro Tray's icons with QPainter and write them where the app, the bundles and the desktop need them.

Run from the repository root after changing the artwork, then commit the output:

    .venv/bin/python resources/make_icons.py

Writes ``resources/icons/tray-{state}.png`` (22 px) and ``tray-{state}@2x.png`` (44 px) for every tray
state and the app icon as ``resources/kiro-tray-{256,512}.png``, copies all of these into
``kiro_tray/resources/icons/`` (package data the app loads at run time), and writes
``resources/kiro-tray.ico`` and ``resources/kiro-tray.icns``. Those two containers are assembled here
from PNG images, so nothing beyond PySide6 is needed. The output is deterministic for a given Qt version.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QImageWriter,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
)

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
PACKAGE_ICONS = ROOT / "kiro_tray" / "resources" / "icons"

TRAY_SIZE = 22
#: Fill colour per tray state (same hues as the tray's drawn fallback in ``kiro_tray/ui/icons.py``).
STATE_COLORS = {
    "stopped": "#8a8f98",
    "running": "#2e9d5b",
    "busy": "#2f7fd8",
    "problem": "#d9822b",
}
OUTLINE = QColor(20, 24, 30, 235)  # dark rim: the tile stays distinct on light panels
HALO = QColor(255, 255, 255, 150)  # light rim outside it: and on dark ones
APP_TOP, APP_BOTTOM = "#7b5cff", "#3a2a9e"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
#: ICNS element types holding PNG data, by pixel size (the ``@2x`` types reuse the larger images).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)


def new_image(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    return image


def begin(image: QImage) -> QPainter:
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    return painter


def k_mark(painter: QPainter, box: QRectF, width: float) -> None:
    """The white "K" in ``box``: a stem and two strokes meeting left of centre."""
    pen = QPen(QColor("white"), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    x, y, w, h = box.x(), box.y(), box.width(), box.height()
    painter.drawLine(QPointF(x + w * 0.30, y + h * 0.24), QPointF(x + w * 0.30, y + h * 0.76))
    arms = QPainterPath(QPointF(x + w * 0.72, y + h * 0.24))
    arms.lineTo(QPointF(x + w * 0.38, y + h * 0.50))
    arms.lineTo(QPointF(x + w * 0.72, y + h * 0.76))
    painter.drawPath(arms)


def badge(painter: QPainter, centre: QPointF, radius: float, fill: str, unit: float) -> None:
    """A round badge with the same two-tone rim as the tile."""
    painter.setPen(QPen(HALO, unit * 1.6))
    painter.setBrush(QColor(fill))
    painter.drawEllipse(centre, radius, radius)
    painter.setPen(QPen(OUTLINE, unit))
    painter.drawEllipse(centre, radius, radius)


def tray_image(state: str, size: int) -> QImage:
    """A rounded tile in the state's colour with the K mark; busy and problem carry a badge too.

    The colour is never the only cue: stopped is a hollow tile, busy has a white dot badge and
    problem a red "!" badge, so the states also read in grey scale.
    """
    image = new_image(size)
    painter = begin(image)
    unit = size / TRAY_SIZE  # one logical pixel
    inset = unit * 1.5
    tile = QRectF(inset, inset, size - 2 * inset, size - 2 * inset)
    radius = size * 0.22
    painter.setPen(QPen(HALO, unit * 2.2))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(tile, radius, radius)
    colour = QColor(STATE_COLORS[state])
    if state == "stopped":
        painter.setPen(QPen(OUTLINE, unit))
        painter.setBrush(colour.lighter(125))
        painter.drawRoundedRect(tile, radius, radius)
        inner = tile.adjusted(unit * 2.5, unit * 2.5, -unit * 2.5, -unit * 2.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour.darker(150))
        painter.drawRoundedRect(inner, radius * 0.6, radius * 0.6)
    else:
        painter.setPen(QPen(OUTLINE, unit))
        painter.setBrush(colour)
        painter.drawRoundedRect(tile, radius, radius)
    k_mark(painter, tile, max(1.6, unit * 2.0))
    if state == "busy":
        badge(painter, QPointF(size - unit * 5, size - unit * 5), unit * 4, "#ffffff", unit)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(STATE_COLORS["busy"]))
        painter.drawEllipse(QPointF(size - unit * 5, size - unit * 5), unit * 1.6, unit * 1.6)
    elif state == "problem":
        centre = QPointF(size - unit * 5.5, unit * 5.5)
        badge(painter, centre, unit * 5, "#c62828", unit)
        pen = QPen(QColor("white"), unit * 1.8)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawLine(centre + QPointF(0, -unit * 2.6), centre + QPointF(0, unit * 0.6))
        painter.drawPoint(centre + QPointF(0, unit * 2.7))
    painter.end()
    return image


def app_image(size: int) -> QImage:
    """The application icon: an indigo rounded tile with the K mark and a green status light."""
    image = new_image(size)
    painter = begin(image)
    inset = size * 0.09  # the margin macOS app icons keep around their tile
    tile = QRectF(inset, inset, size - 2 * inset, size - 2 * inset)
    radius = tile.width() * 0.225
    gradient = QLinearGradient(tile.topLeft(), tile.bottomLeft())
    gradient.setColorAt(0.0, QColor(APP_TOP))
    gradient.setColorAt(1.0, QColor(APP_BOTTOM))
    painter.setPen(QPen(QColor(0, 0, 0, 90), max(1.0, size / 128)))
    painter.setBrush(QBrush(gradient))
    painter.drawRoundedRect(tile, radius, radius)
    k_mark(painter, tile.adjusted(tile.width() * 0.06, 0, 0, 0), max(2.0, size * 0.075))
    light = QPointF(tile.x() + tile.width() * 0.70, tile.center().y())  # in the mouth of the K
    painter.setPen(QPen(QColor("white"), max(1.0, size * 0.02)))
    painter.setBrush(QColor(STATE_COLORS["running"]))
    painter.drawEllipse(light, size * 0.07, size * 0.07)
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise RuntimeError(f"Qt could not encode a PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows ``.ico`` with one PNG-compressed entry per size (valid since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, png in sorted(pngs.items()):
        edge = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", edge, edge, 0, 0, 1, 32, len(png), offset)
        blobs += png
        offset += len(png)
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS ``.icns``: the ``icns`` header, then one (type, length, PNG) element per slot."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"wrote {path.relative_to(ROOT)} ({len(data):,} bytes)")


def main() -> int:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # kept alive while painting
    for state in STATE_COLORS:
        for suffix, scale in (("", 1), ("@2x", 2)):
            name = f"tray-{state}{suffix}.png"
            write(RESOURCES / "icons" / name, png_bytes(tray_image(state, TRAY_SIZE * scale)))
    if PACKAGE_ICONS.exists():
        shutil.rmtree(PACKAGE_ICONS)
    shutil.copytree(RESOURCES / "icons", PACKAGE_ICONS)
    print(f"copied the tray icons to {PACKAGE_ICONS.relative_to(ROOT)}")

    app_pngs = {size: png_bytes(app_image(size)) for size in {*ICO_SIZES, *(s for _, s in ICNS_TYPES)}}
    for size in (256, 512):
        write(RESOURCES / f"kiro-tray-{size}.png", app_pngs[size])
        write(PACKAGE_ICONS / f"kiro-tray-{size}.png", app_pngs[size])  # the window icon at run time
    write(RESOURCES / "kiro-tray.ico", ico_bytes({s: app_pngs[s] for s in ICO_SIZES}))
    write(RESOURCES / "kiro-tray.icns", icns_bytes(app_pngs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
