"""How this process was started, so hints name a command that works as written (Qt-free).

The launchers export ``KIRO_TRAY_LAUNCHER`` (``./kiro-api-start.command`` or ``kiro-api-start.bat``) after
changing to their own folder; a PyInstaller bundle sets ``sys.frozen``; otherwise ``argv[0]`` tells a
``kiro-tray`` console script from ``python -m kiro_tray``. :func:`detect` reads all of it once, at start-up.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import NAME

LAUNCHER_ENV = "KIRO_TRAY_LAUNCHER"
WINDOWS_CONSOLE_EXE = f"{NAME}.exe"  # the bundle's console twin of "Kiro Tray.exe" (packaging/windows.spec)


@dataclass(frozen=True, slots=True)
class StartMode:
    #: The command a user types to run this app again, e.g. ``("./kiro-api-start.command",)``.
    command: tuple[str, ...]
    #: The folder holding the app or its launcher: start at login runs there, so its ``.env`` applies.
    folder: Path
    platform: str = sys.platform
    #: True when ``command`` only works from ``folder`` (the launchers, named relative to their folder).
    from_folder: bool = False

    def hint(self, *args: str) -> str:
        """The command line, quoted for the platform's shell: ``start_mode.hint("--print-key")``."""
        argv = [*self.command, *args]
        if self.platform == "win32":
            return subprocess.list2cmdline(argv)
        return shlex.join(argv)


def detect(
    *,
    environ: Mapping[str, str] | None = None,
    argv0: str | None = None,
    executable: str | None = None,
    frozen: bool | None = None,
    cwd: Path | None = None,
    platform: str = sys.platform,
) -> StartMode:
    """Every parameter defaults to this process (tests pass each start mode explicitly)."""
    env = os.environ if environ is None else environ
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    here = Path.cwd() if cwd is None else cwd
    if frozen:
        return _bundle(Path(executable), platform)
    launcher = env.get(LAUNCHER_ENV)
    if launcher:
        return StartMode((launcher,), here, platform, from_folder=True)
    script = Path(argv0)
    if script.stem == NAME:  # the console script (kiro-tray, kiro-tray.exe, kiro-tray-script.py)
        return StartMode((_as_typed(script, NAME, env),), here, platform)
    python = _as_typed(Path(executable), "python", env, also=("python3",))
    return StartMode((python, "-m", "kiro_tray"), here, platform)


def _bundle(executable: Path, platform: str) -> StartMode:
    folder = executable.parent
    if platform == "win32" and (folder / WINDOWS_CONSOLE_EXE).is_file():
        executable = folder / WINDOWS_CONSOLE_EXE  # the tray exe has no console to print into
    if folder.name == "MacOS" and folder.parent.name == "Contents" and folder.parent.parent.suffix == ".app":
        folder = folder.parent.parent.parent  # the folder holding "Kiro Tray.app"
    return StartMode((str(executable),), folder, platform)


def _as_typed(program: Path, name: str, env: Mapping[str, str], also: Sequence[str] = ()) -> str:
    """``name`` (or one of ``also``) when the PATH finds this very program under it, else its full path."""
    for candidate in (name, *also):
        found = shutil.which(candidate, path=env.get("PATH"))
        if found is not None and _same(Path(found), program):
            return candidate
    return str(program.absolute())


def _same(a: Path, b: Path) -> bool:
    """Same file by its unresolved path: a venv's python is a symlink to one outside the venv."""
    return os.path.normcase(a.absolute()) == os.path.normcase(b.absolute())
