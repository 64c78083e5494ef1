"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every write goes to a temp file in the target's directory, named ``.<name>.<random>.tmp`` (``mkstemp``,
so two writers never share one), created with its final mode before any byte is written (default 0600:
these files hold tokens), then flushed, ``fsync``-ed, moved over the target with ``os.replace`` and,
on POSIX, the directory is ``fsync``-ed so the rename itself survives a power cut. On any failure the
temp file is removed. A process killed mid-write can still leave one behind:
:func:`remove_stale_temps` deletes such leftovers, and every write calls it for its own target first.

Blocking file I/O: from async code, call through ``asyncio.to_thread``. Stdlib only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o600
STALE_AFTER_SECONDS = 60.0


def write_bytes(path: Path, data: bytes, *, mode: int = PRIVATE_MODE, keep_mode: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically. ``mode`` is the new file's permission bits; with
    ``keep_mode`` an existing file keeps its own (``mode`` then applies only when creating it)."""
    _write(path, lambda fh: fh.write(data), mode=mode, keep_mode=keep_mode)


def write_text(
    path: Path, text: str, *, encoding: str = "utf-8", mode: int = PRIVATE_MODE, keep_mode: bool = False
) -> None:
    """:func:`write_bytes` for text."""
    write_bytes(path, text.encode(encoding), mode=mode, keep_mode=keep_mode)


def write_json(
    path: Path, data: object, *, sort_keys: bool = False, mode: int = PRIVATE_MODE, keep_mode: bool = False
) -> None:
    """:func:`write_bytes` for ``data`` as indented JSON and a final newline. The JSON is streamed into
    the temp file: a value that cannot be encoded fails the write and leaves the target untouched."""

    def dump(fh: BinaryIO) -> None:
        for chunk in json.JSONEncoder(indent=2, sort_keys=sort_keys).iterencode(data):
            fh.write(chunk.encode("utf-8"))
        fh.write(b"\n")

    _write(path, dump, mode=mode, keep_mode=keep_mode)


def remove_stale_temps(directory: Path, name: str, *, older_than: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Delete this module's temp files for ``directory / name`` last modified more than ``older_than``
    seconds ago (a younger one may belong to a write in progress). Returns what it removed; never raises:
    a directory that cannot be listed or a file that cannot be removed is skipped."""
    pattern = re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]+\.tmp")
    cutoff = time.time() - older_than
    removed: list[Path] = []
    try:
        candidates = [entry for entry in os.scandir(directory) if pattern.fullmatch(entry.name)]
    except OSError:
        return removed
    for entry in candidates:
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    for path in removed:
        log.info("removed %s, left over from an interrupted write", path)
    return removed


def _write(path: Path, write: Callable[[BinaryIO], object], *, mode: int, keep_mode: bool) -> None:
    path = Path(path)
    if keep_mode:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            pass
    remove_stale_temps(path.parent, path.name)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp_name, mode)  # before the first byte; chmod is not filtered by the umask
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the OS allows it (POSIX; Windows cannot open a directory)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        log.debug("cannot open %s to fsync it: %s", directory, exc.strerror)
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on a directory
        log.debug("cannot fsync %s: %s", directory, exc.strerror)
    finally:
        os.close(fd)
