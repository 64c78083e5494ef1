"""The command line: how the GUI is reached, the key hints, and the guard for non-loopback hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gui_does_not_import_the_cli() -> None:
    """The CLI's lazy ``ui.app`` import is the only edge between them: no cycle through ``AppPaths``."""
    probe = "import sys, kiro_tray.ui.app; print(sorted(m for m in sys.modules if m == 'kiro_tray.cli'))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
