"""Start at login: the Linux XDG autostart entry for real, and the macOS and Windows file formats."""

from __future__ import annotations

import configparser
import plistlib
import shlex
from pathlib import Path

import pytest

from kiro_tray.ui import autostart

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def test_linux_entry_is_written_read_and_removed(tmp_path: Path) -> None:
    base = tmp_path / "autostart"
    assert not autostart.is_enabled(base, "linux")
    folder = tmp_path / "Kiro Tray\\checkout"  # a space and a backslash: both escaped in the entry
    path = autostart.enable(["/opt/kiro tray/bin/python", "-m", "kiro_tray"], base, "linux", folder=folder)
    assert path == base / "kiro-tray.desktop"
    assert autostart.is_enabled(base, "linux")
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(path)
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Name"] == "Kiro Tray"
    assert desktop["X-GNOME-Autostart-enabled"] == "true"
    assert shlex.split(desktop["Exec"]) == ["/opt/kiro tray/bin/python", "-m", "kiro_tray"]
    assert desktop["Path"].replace("\\\\", "\\") == str(folder)  # the working directory: its .env applies
    autostart.disable(base, "linux")
    assert not autostart.is_enabled(base, "linux")
    autostart.disable(base, "linux")  # disabling twice is fine


def test_linux_default_folder_follows_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert autostart.entry_path(platform="linux") == tmp_path / "xdg" / "autostart" / "kiro-tray.desktop"


def test_enable_uses_this_installation_and_its_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where this process was started (a launcher changes to its own folder)
    path = autostart.enable(base=tmp_path / "autostart", platform="linux")
    text = path.read_text()
    assert "-m kiro_tray" in text
    assert f"\nPath={tmp_path}\n" in text


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("plain", "plain"),
        ("with space", '"with space"'),
        ('quote"d', '"quote\\"d"'),
        ("50%", '"50%%"'),
        ("$HOME", '"\\$HOME"'),
    ],
)
def test_desktop_exec_quoting(arg: str, quoted: str) -> None:
    assert autostart.desktop_exec_quote(arg) == quoted


def test_macos_launch_agent(tmp_path: Path) -> None:
    path = autostart.enable(
        ["/Applications/Kiro Tray.app/Contents/MacOS/kiro-tray"],
        tmp_path,
        "darwin",
        folder=Path("/Applications"),
    )
    assert path.name == "dev.kiro-tray.agent.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == ["/Applications/Kiro Tray.app/Contents/MacOS/kiro-tray"]
    assert agent["WorkingDirectory"] == "/Applications"
    assert agent["RunAtLoad"] is True
    assert autostart.is_enabled(tmp_path, "darwin")


def test_windows_startup_script(tmp_path: Path) -> None:
    path = autostart.enable(
        [r"C:\Program Files\Kiro Tray\pythonw.exe", "-m", "kiro_tray"],
        tmp_path,
        "win32",
        folder=Path(r"C:\Users\me\100% kiro-tray"),
    )
    assert path.name == "Kiro Tray.cmd"
    assert path.read_bytes() == (
        b"@echo off\r\n"
        b'cd /d "C:\\Users\\me\\100%% kiro-tray"\r\n'
        b'start "" "C:\\Program Files\\Kiro Tray\\pythonw.exe" -m kiro_tray\r\n'
    )
    autostart.disable(tmp_path, "win32")
    assert not path.exists()
