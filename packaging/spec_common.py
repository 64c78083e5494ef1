"""What every Kiro Tray bundle holds and what the slim build leaves out; imported by the ``*.spec`` files.

The filters follow ``platform-notes.md``: Qt translations, the GTK3 platform theme and the libraries only
it pulls in, the wayland/eglfs/vnc/linuxfb platform plugins, QtNetwork's TLS and network-information
plugins (the app uses QtNetwork only for its single-instance QLocalServer) and the image formats other
than PNG are not needed by a tray app that draws its own widgets, loads PNG icons and talks HTTP through
aiohttp. The Wayland platform plugin goes too: Qt falls back to XWayland (xcb), where tray icons work.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
ENTRY = str(ROOT / "packaging" / "entry.py")
NAME = "kiro-tray"
APP_NAME = "Kiro Tray"
BUNDLE_ID = "io.github.kiro-tray"

#: Python modules never imported by the app (the test tools and Qt modules it does not use).
EXCLUDED_MODULES = [
    "tkinter",
    "pytest",
    "hypothesis",
    "mypy",
    "pydantic.mypy",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
    "PySide6.QtSql",
    "PySide6.QtSvg",
    "PySide6.QtPdf",
    "PySide6.QtTest",
    "PySide6.QtXml",
    "PySide6.QtConcurrent",
    "PySide6.QtPrintSupport",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtUiTools",
]

DROPPED_PATHS = re.compile(
    r"""
    PySide6/(Qt/)?translations/
  | PySide6/(Qt/)?plugins/platformthemes/[^/]*gtk3
  | PySide6/(Qt/)?plugins/platforms/[^/]*(wayland|eglfs|vnc|linuxfb|minimalegl|vkkhrdisplay)
  | PySide6/(Qt/)?plugins/(wayland-[^/]*|egldeviceintegrations|networkinformation|tls|qmltooling
                            |sqldrivers|designer|printsupport|vectorimageformats|generic|iconengines)/
  | PySide6/(Qt/)?plugins/imageformats/[^/]*q(gif|jpeg|svg|tga|tiff|wbmp|webp|pdf)\b
  | PySide6/Qt/lib/libQt6(Qml|Quick|Pdf|Svg|Wayland|Wl|EglFS|EglFs|OpenGL|Sql|Test|Xml)
  | (^|/)lib(gtk-3|gdk-3|atk-1|atk-bridge|atspi|pango|pangocairo|pangoft2|cairo|cairo-gobject
             |gdk_pixbuf|epoxy|wayland-|Xcomposite|Xdamage|Xcursor|Xinerama|Xrandr|Xi\.)
    """,
    re.VERBOSE,
)
"""Bundle paths (as PyInstaller names them, "/"-separated) the slim build drops. The ``libQt6``/``lib``
names exist only on Linux; on macOS and Windows only plugins and translations go (the Linux bundle is
the one CI runs, so only there are Qt libraries themselves removed)."""

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def analysis_options() -> dict[str, Any]:
    """Keyword arguments for ``Analysis`` shared by every platform."""
    from PyInstaller.utils.hooks import collect_submodules

    return {
        "scripts": [ENTRY],
        "pathex": [str(ROOT)],
        # the GUI is imported lazily by the CLI; name every module so none is missed
        "hiddenimports": collect_submodules("kiro_tray"),
        "datas": [(str(ROOT / "kiro_tray" / "resources"), "kiro_tray/resources")],
        "excludes": EXCLUDED_MODULES,
        "noarchive": False,
    }


Entry = tuple[str, str, str]  # PyInstaller TOC entry: (name in the bundle, source path, type code)


def slim_bundle(analysis: Any) -> None:
    """Drop what the slim build leaves out from an ``Analysis``'s binaries and datas, in place.

    Also drops, on Linux, the system libraries only the dropped plugins linked (the GTK3 theme brings
    cairo, pango, gdk-pixbuf, ...), and the symlinks PyInstaller made to any dropped library.
    """
    binaries = [entry for entry in analysis.binaries if not dropped(entry)]
    datas = [entry for entry in analysis.datas if not dropped(entry)]
    if sys.platform.startswith("linux"):
        binaries = drop_orphan_libraries(binaries)
    present = {name for name, _, kind in binaries + datas if kind != "SYMLINK"}
    analysis.binaries = [e for e in binaries if e[2] != "SYMLINK" or e[1] in present]
    analysis.datas = [e for e in datas if e[2] != "SYMLINK" or e[1] in present]


def dropped(entry: Entry) -> bool:
    return DROPPED_PATHS.search(entry[0].replace("\\", "/")) is not None


def drop_orphan_libraries(binaries: list[Entry]) -> list[Entry]:
    """Keep a top-level ``lib*.so*`` only when something kept links it (walks the link graph)."""
    from PyInstaller.depend.bindepend import get_imports

    def collectable(name: str) -> bool:
        return (
            "/" not in name and name.startswith("lib") and ".so" in name and not name.startswith("libpython")
        )

    real = {name: source for name, source, kind in binaries if kind != "SYMLINK"}
    by_basename = {Path(name).name: name for name in real if collectable(name)}
    kept = {name for name in real if not collectable(name)}
    queue = list(kept)
    while queue:
        for linked, _ in get_imports(real[queue.pop()]):
            name = by_basename.get(Path(linked).name)
            if name is not None and name not in kept:
                kept.add(name)
                queue.append(name)
    return [entry for entry in binaries if entry[2] == "SYMLINK" or entry[0] in kept]
