"""The icons and desktop file the bundles ship, the slim filter, and the Linux bundle built and smoke-tested.

The build test runs ``packaging/build.py`` exactly as a developer or CI would: PyInstaller builds the
one-dir bundle into a temporary folder, then the script starts it headless against the fake Kiro, waits
for ``/health``, streams a chat completion to ``data: [DONE]`` and starts the tray app offscreen.
"""

from __future__ import annotations

import configparser
import importlib.util
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
STATES = ("stopped", "running", "busy", "problem")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def load_spec_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spec_common", ROOT / "packaging" / "spec_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("state", STATES)
def test_tray_icons_exist_at_1x_and_2x_and_ship_in_the_package(state: str) -> None:
    for suffix, edge in (("", 22), ("@2x", 44)):
        name = f"tray-{state}{suffix}.png"
        source = (RESOURCES / "icons" / name).read_bytes()
        assert png_size(source) == (edge, edge)
        # the runtime copy the tray loads (package data) is the generated one
        assert (ROOT / "kiro_tray" / "resources" / "icons" / name).read_bytes() == source


def test_app_icon_pngs_have_their_sizes_and_ship_in_the_package() -> None:
    for edge in (256, 512):
        source = (RESOURCES / f"kiro-tray-{edge}.png").read_bytes()
        assert png_size(source) == (edge, edge)
        assert (ROOT / "kiro_tray" / "resources" / "icons" / f"kiro-tray-{edge}.png").read_bytes() == source


def test_ico_holds_png_images_from_16_to_256() -> None:
    data = (RESOURCES / "kiro-tray.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        edge = width or 256
        assert png_size(data[offset : offset + length]) == (edge, height or 256)
        sizes.append(edge)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_icns_holds_png_elements_whose_sizes_match_their_types() -> None:
    expected = {
        b"icp4": 16,
        b"icp5": 32,
        b"icp6": 64,
        b"ic07": 128,
        b"ic08": 256,
        b"ic09": 512,
        b"ic10": 1024,
    }
    expected |= {b"ic11": 32, b"ic12": 64, b"ic13": 256, b"ic14": 512}
    data = (RESOURCES / "kiro-tray.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    found = {}
    position = 8
    while position < len(data):
        kind, length = (
            data[position : position + 4],
            struct.unpack(">I", data[position + 4 : position + 8])[0],
        )
        found[kind] = png_size(data[position + 8 : position + length])[0]
        position += length
    assert position == len(data)
    assert found == expected


def test_desktop_file_launches_kiro_tray_with_its_icon() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(RESOURCES / "kiro-tray.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Kiro Tray"
    assert entry["Exec"].split()[0] == "kiro-tray"
    assert entry["Icon"] == "kiro-tray"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


@pytest.mark.parametrize(
    ("path", "dropped"),
    [
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland-egl.so", True),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", True),
        ("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", True),
        ("PySide6/Qt/plugins/tls/libqopensslbackend.so", True),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", True),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", True),
        ("PySide6/Qt/lib/libQt6Qml.so.6", True),
        ("libgtk-3.so.0", True),
        ("libcairo.so.2", True),
        ("PySide6/translations/qtbase_de.qm", True),  # Windows layout
        ("PySide6/plugins/imageformats/qjpeg.dll", True),
        # what the tray app needs stays
        ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", False),
        ("PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so", False),
        ("PySide6/Qt/plugins/imageformats/libqico.so", False),
        ("PySide6/Qt/lib/libQt6Network.so.6", False),  # the single-instance QLocalServer
        ("PySide6/Qt/lib/libQt6DBus.so.6", False),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", False),
        ("PySide6/Qt/lib/libicudata.so.73", False),
        ("PySide6/plugins/platforms/qwindows.dll", False),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", False),
        ("libxcb-cursor.so.0", False),
        ("libxkbcommon.so.0", False),
        ("kiro_tray/resources/icons/tray-running.png", False),
    ],
)
def test_slim_filter_drops_only_what_the_tray_app_does_not_use(path: str, dropped: bool) -> None:
    common = load_spec_common()
    assert common.dropped((path, "/src", "BINARY")) is dropped


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CI builds and smoke-tests the Linux bundle")
@pytest.mark.skipif(
    importlib.util.find_spec("PyInstaller") is None,
    reason="PyInstaller is not installed (pip install pyinstaller, or the dev extra)",
)
def test_linux_bundle_builds_and_passes_the_smoke_test(tmp_path: Path) -> None:
    started = time.monotonic()
    command = [
        sys.executable,
        "packaging/build.py",
        "--dist",
        str(tmp_path / "dist"),
        "--work",
        str(tmp_path / "work"),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=840)
    output = result.stdout + result.stderr
    print(output[-3000:])
    print(f"build + smoke test took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, output[-3000:]
    assert "== smoke test passed" in result.stdout
    assert "ending with data: [DONE]" in result.stdout
    assert "the tray app served /health" in result.stdout

    bundle = tmp_path / "dist" / "kiro-tray"
    for name in ("kiro-tray", "kiro-tray.desktop", "kiro-tray.png", "install-desktop-entry.sh"):
        assert (bundle / name).is_file(), name
    internal = bundle / "_internal"
    assert (internal / "kiro_tray" / "resources" / "icons" / "tray-problem@2x.png").is_file()
    assert not (internal / "PySide6" / "Qt" / "translations").exists()
    assert not list(internal.glob("PySide6/Qt/plugins/platforms/*wayland*"))
    dangling = [p.name for p in internal.iterdir() if p.is_symlink() and not p.exists()]
    assert dangling == []
