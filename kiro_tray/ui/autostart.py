"""Start at login: a macOS LaunchAgent, a Windows Startup-folder script, or a Linux XDG autostart entry.

Every function takes ``base`` (the folder the entry lives in) and ``platform`` (``sys.platform``) so tests
can point them at a temporary directory. The entry starts the app in ``folder`` (the folder holding the app
or its launcher, see :mod:`kiro_tray.start_mode`), so the ``.env`` there applies at login as it does when
started by hand. These touch the file system: call them off the event loop.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..start_mode import detect

LABEL = "dev.kiro-tray.agent"
APP_NAME = "Kiro Tray"


def launch_command() -> list[str]:
    """How this installation starts the tray app (a frozen bundle, or this Python with ``-m``)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    python = Path(sys.executable)
    if sys.platform == "win32":  # no console window at login
        windowed = python.with_name("pythonw.exe")
        if windowed.is_file():
            python = windowed
    return [str(python), "-m", "kiro_tray"]


def default_base(platform: str = sys.platform) -> Path:
    home = Path.home()
    if platform == "darwin":
        return home / "Library" / "LaunchAgents"
    if platform == "win32":
        appdata = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
        return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
    config = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config) / "autostart"


def entry_path(base: Path | None = None, platform: str = sys.platform) -> Path:
    folder = base if base is not None else default_base(platform)
    if platform == "darwin":
        return folder / f"{LABEL}.plist"
    if platform == "win32":
        return folder / "Kiro Tray.cmd"
    return folder / "kiro-tray.desktop"


def is_enabled(base: Path | None = None, platform: str = sys.platform) -> bool:
    return entry_path(base, platform).is_file()


def enable(
    command: Sequence[str] | None = None,
    base: Path | None = None,
    platform: str = sys.platform,
    *,
    folder: Path | None = None,
) -> Path:
    """Write the login entry (replacing an older one) and return its path. ``folder`` is the working
    directory at login (default: the folder this process was started from)."""
    argv = list(command) if command is not None else launch_command()
    cwd = str(folder if folder is not None else detect().folder)
    path = entry_path(base, platform)
    path.parent.mkdir(parents=True, exist_ok=True)
    if platform == "darwin":
        content = plistlib.dumps(
            {
                "Label": LABEL,
                "ProgramArguments": argv,
                "WorkingDirectory": cwd,
                "RunAtLoad": True,
                "ProcessType": "Interactive",
            }
        )
        path.write_bytes(content)
    elif platform == "win32":
        path.write_text(windows_script(argv, cwd), encoding="utf-8", newline="\r\n")
    else:
        path.write_text(desktop_entry(argv, cwd), encoding="utf-8")
    return path


def disable(base: Path | None = None, platform: str = sys.platform) -> None:
    entry_path(base, platform).unlink(missing_ok=True)


# ---- file formats ------------------------------------------------------------------------------------


def desktop_exec_quote(arg: str) -> str:
    """Quote one argument of a desktop entry's ``Exec`` key (Desktop Entry Specification, "Exec")."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`=%")
    if arg and not reserved.intersection(arg):
        return arg
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
    return '"' + escaped.replace("%", "%%") + '"'


def desktop_string(value: str) -> str:
    """A desktop entry string value: a backslash is doubled, control characters are escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def desktop_entry(argv: Sequence[str], cwd: str) -> str:
    # The desktop-entry string escaping applies on top of the Exec quoting.
    exec_line = desktop_string(" ".join(desktop_exec_quote(a) for a in argv))
    return "\n".join(
        (
            "[Desktop Entry]",
            "Type=Application",
            f"Name={APP_NAME}",
            "Comment=Local OpenAI- and Anthropic-compatible gateway to Kiro",
            f"Exec={exec_line}",
            f"Path={desktop_string(cwd)}",
            "Icon=kiro-tray",
            "Terminal=false",
            "Categories=Development;Network;",
            "X-GNOME-Autostart-enabled=true",
            "",
        )
    )


def windows_script(argv: Sequence[str], cwd: str) -> str:
    # `cd /d` also changes the drive; `start ""` detaches so no console stays open; list2cmdline applies
    # Windows' quoting rules; a literal % is doubled in a batch file.
    folder = cwd.replace("%", "%%")
    command = subprocess.list2cmdline(list(argv)).replace("%", "%%")
    return f'@echo off\ncd /d "{folder}"\nstart "" {command}\n'
