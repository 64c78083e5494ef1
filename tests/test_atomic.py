"""kiro_tray.atomic: whole files or nothing, private from the first byte, no temp file left behind."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from pathlib import Path

import keyring.backends.fail
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_tray import atomic
from kiro_tray.settings import SETTINGS_FILE_NAME, load_settings, write_settings_file
from kiro_tray.upstream.credentials import CredsFileSource
from kiro_tray.upstream.secret_store import FALLBACK_FILE_NAME, SecretStore

from .harness import ALLOW_KEYRING_FALLBACK

SECRET = "aorSecret" + "S" * 60


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def make_temp(directory: Path, target: str, age_seconds: float) -> Path:
    """A file named as the helper names its temp files, last modified ``age_seconds`` ago."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{target}.", suffix=".tmp")
    os.write(fd, SECRET.encode())
    os.close(fd)
    then = time.time() - age_seconds
    os.utime(name, (then, then))
    return Path(name)


@given(st.binary())
def test_bytes_round_trip_and_leave_only_the_target(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "blob.bin"
        atomic.write_bytes(target, b"old")
        atomic.write_bytes(target, data)
        assert target.read_bytes() == data
        assert names(Path(tmp)) == {"blob.bin"}


def test_json_keeps_every_value_and_ends_with_a_newline(tmp_path: Path) -> None:
    data = {"refreshToken": SECRET, "unknown": {"nested": [1, 2.5, None, True]}, "ünïcode": "✓"}
    target = tmp_path / "creds.json"
    atomic.write_json(target, data)
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text.endswith("}\n")
    atomic.write_json(target, {"b": 1, "a": 2}, sort_keys=True)
    assert list(json.loads(target.read_text())) == ["a", "b"]


def test_text_uses_the_encoding(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    atomic.write_text(target, "é\n", encoding="latin-1")
    assert target.read_bytes() == b"\xe9\n"


def test_new_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        atomic.write_text(tmp_path / "private", SECRET)
        atomic.write_text(tmp_path / "shared", "x", mode=0o644)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "private") == 0o600
    assert mode(tmp_path / "shared") == 0o644


def test_mode_replaces_or_keeps_an_existing_files_mode(tmp_path: Path) -> None:
    loose = tmp_path / "loose.json"
    loose.write_text("{}")
    loose.chmod(0o644)
    atomic.write_json(loose, {})
    assert mode(loose) == 0o600  # tightened
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o640)
    atomic.write_json(kept, {}, keep_mode=True)
    assert mode(kept) == 0o640
    atomic.write_json(tmp_path / "created.json", {}, keep_mode=True)
    assert mode(tmp_path / "created.json") == 0o600


def test_a_failure_mid_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "creds.json"
    target.write_text('{"old": true}')
    # JSON is streamed: the long string is written to the temp file before the object fails to encode.
    with pytest.raises(TypeError):
        atomic.write_json(target, {"refreshToken": SECRET * 1000, "bad": object()})
    assert target.read_text() == '{"old": true}'
    assert names(tmp_path) == {"creds.json"}


def test_a_failure_to_replace_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "child").mkdir(parents=True)  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        atomic.write_text(target, SECRET)
    assert names(tmp_path) == {"taken"}


def test_remove_stale_temps_removes_only_old_temps_of_that_file(tmp_path: Path) -> None:
    stale = make_temp(tmp_path, "secrets.json", age_seconds=3600)
    fresh = make_temp(tmp_path, "secrets.json", age_seconds=0)
    other_target = make_temp(tmp_path, "settings.json", age_seconds=3600)
    lookalikes = [tmp_path / ".secrets.json.tmp", tmp_path / "secrets.json.tmp", tmp_path / "secrets.json"]
    for path in lookalikes:
        path.write_text("{}")
        os.utime(path, (0, 0))
    assert atomic.remove_stale_temps(tmp_path, "secrets.json") == [stale]
    assert not stale.exists()
    assert all(p.exists() for p in [fresh, other_target, *lookalikes])
    assert atomic.remove_stale_temps(tmp_path / "missing", "secrets.json") == []


def test_a_write_removes_what_a_killed_write_left(tmp_path: Path) -> None:
    stale = make_temp(tmp_path, "settings.json", age_seconds=3600)
    atomic.write_json(tmp_path / "settings.json", {})
    assert names(tmp_path) == {"settings.json"}
    assert not stale.exists()


@ALLOW_KEYRING_FALLBACK
def test_the_apps_files_drop_what_a_killed_write_left(tmp_path: Path) -> None:
    leftovers = [make_temp(tmp_path, name, age_seconds=3600) for name in (FALLBACK_FILE_NAME, "creds.json")]
    # The secrets file: as soon as the store falls back to it, before anything is written.
    assert SecretStore(tmp_path, backend=keyring.backends.fail.Keyring()).get("anything") is None
    assert not leftovers[0].exists()
    # A credentials file written back: when it is loaded.
    (tmp_path / "creds.json").write_text(json.dumps({"refreshToken": SECRET}))
    assert CredsFileSource(tmp_path / "creds.json").load().refresh_token == SECRET
    assert not leftovers[1].exists()
    # The settings file: when it is written, with the helper (no fixed "settings.tmp" any more).
    make_temp(tmp_path, SETTINGS_FILE_NAME, age_seconds=3600)
    settings = load_settings(environ={}, cwd=tmp_path, config_dir=tmp_path)
    write_settings_file(tmp_path / SETTINGS_FILE_NAME, settings)
    assert names(tmp_path) == {"creds.json", SETTINGS_FILE_NAME}
    assert mode(tmp_path / SETTINGS_FILE_NAME) == 0o600
