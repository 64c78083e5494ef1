"""Where the app keeps its settings, secrets fallback and logs (Qt-free: the CLI and the GUI share it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import NAME


@dataclass(frozen=True, slots=True)
class AppPaths:
    config_dir: Path
    log_dir: Path

    @classmethod
    def resolve(cls, config_dir: str | None = None) -> AppPaths:
        explicit = config_dir or os.environ.get("KIRO_TRAY_CONFIG_DIR")
        if explicit:
            base = Path(explicit).expanduser()
            return cls(base, base / "logs")
        import platformdirs

        return cls(
            Path(platformdirs.user_config_dir(NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(NAME, appauthor=False)),
        )
