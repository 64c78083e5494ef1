"""The Kiro IDE's own login, ``~/.aws/sso/cache/kiro-auth-token.json``, found without any setting."""

from __future__ import annotations

import logging
from pathlib import Path

from .base import Discovery
from .creds_file import CredsFileSource

log = logging.getLogger(__name__)


def default_kiro_ide_token_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".aws" / "sso" / "cache" / "kiro-auth-token.json"


class KiroIdeSource(CredsFileSource):
    """The Kiro IDE's own login, ``~/.aws/sso/cache/kiro-auth-token.json`` (same format as above)."""

    _kind = "kiro_ide"
    __slots__ = ()

    def __init__(self, path: Path | None = None, *, home: Path | None = None) -> None:
        super().__init__(path or default_kiro_ide_token_path(home))

    @property
    def description(self) -> str:
        return f"Kiro IDE login ({self._path})"

    @property
    def _where(self) -> str:
        return f"Kiro IDE login {self._path}"


def detect_kiro_ide(wanted: Discovery) -> KiroIdeSource | None:
    """The Kiro IDE login in the user's home, when the file is there."""
    ide = KiroIdeSource(home=wanted.home)
    if not ide.path.is_file():
        return None
    log.info("auto-detected Kiro IDE login at %s", ide.path)
    return ide
