"""The command line: how the GUI is reached, the key hints, and the guard for non-loopback hosts."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiro_tray.settings import DECLARATIONS
from kiro_tray.start_mode import LAUNCHER_ENV, detect

REPO = Path(__file__).resolve().parents[1]


def test_the_gui_does_not_import_the_cli() -> None:
    """The CLI's lazy ``ui.app`` import is the only edge between them: no cycle through ``AppPaths``."""
    probe = "import sys, kiro_tray.ui.app; print(sorted(m for m in sys.modules if m == 'kiro_tray.cli'))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# ---- hints name the command that started the app ---------------------------------------------------


def executable(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_hint_for_the_command_launcher(tmp_path: Path) -> None:
    mode = detect(environ={LAUNCHER_ENV: "./kiro-api-start.command"}, argv0="x/__main__.py", cwd=tmp_path)
    assert mode.hint("--print-key") == "./kiro-api-start.command --print-key"
    assert mode.folder == tmp_path
    assert mode.from_folder


def test_hint_for_the_bat_launcher(tmp_path: Path) -> None:
    mode = detect(
        environ={LAUNCHER_ENV: "kiro-api-start.bat"}, argv0="x/__main__.py", cwd=tmp_path, platform="win32"
    )
    assert mode.hint("--print-key") == "kiro-api-start.bat --print-key"


def test_hint_for_python_dash_m(tmp_path: Path) -> None:
    python = executable(tmp_path / "venv" / "bin", "python")
    on_path = detect(environ={"PATH": str(python.parent)}, argv0="k/__main__.py", executable=str(python))
    assert on_path.hint("--print-key") == "python -m kiro_tray --print-key"
    python3 = executable(tmp_path / "other", "python3")
    as_python3 = detect(environ={"PATH": str(python3.parent)}, argv0="k/__main__.py", executable=str(python3))
    assert as_python3.hint("--print-key") == "python3 -m kiro_tray --print-key"
    off_path = detect(environ={"PATH": ""}, argv0="k/__main__.py", executable=str(python))
    assert off_path.hint("--print-key") == f"{shlex.quote(str(python))} -m kiro_tray --print-key"


def test_hint_for_the_console_script(tmp_path: Path) -> None:
    script = executable(tmp_path / "with space" / "bin", "kiro-tray")
    on_path = detect(environ={"PATH": str(script.parent)}, argv0=str(script))
    assert on_path.hint("--print-key") == "kiro-tray --print-key"
    off_path = detect(environ={"PATH": ""}, argv0=str(script))
    assert off_path.hint("--print-key") == f"'{script}' --print-key"


def test_hint_for_a_frozen_bundle(tmp_path: Path) -> None:
    linux = executable(tmp_path / "dist" / "kiro-tray", "kiro-tray")
    mode = detect(environ={}, frozen=True, executable=str(linux), platform="linux")
    assert mode.hint("--print-key") == f"{linux} --print-key"
    assert mode.folder == linux.parent
    windows = tmp_path / "win"
    tray_exe = executable(windows, "Kiro Tray.exe")
    executable(windows, "kiro-tray.exe")
    mode = detect(environ={}, frozen=True, executable=str(tray_exe), platform="win32")
    assert mode.hint("--print-key") == f"{windows / 'kiro-tray.exe'} --print-key"  # the console twin
    app = executable(tmp_path / "Apps" / "Kiro Tray.app" / "Contents" / "MacOS", "kiro-tray")
    mode = detect(environ={}, frozen=True, executable=str(app), platform="darwin")
    assert mode.hint("--print-key") == f"'{app}' --print-key"
    assert mode.folder == tmp_path / "Apps"  # start at login runs next to the .app


# ---- the headless process ------------------------------------------------------------------------------


def headless_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without Kiro Tray's settings; no keyring (the key goes to the config folder)."""
    drop = {s.env for s in DECLARATIONS} | {LAUNCHER_ENV}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        PYTHONPATH=str(REPO),  # this checkout's code, whatever the venv's editable install points at
        KIRO_TRAY_CONFIG_DIR=str(tmp_path / "config"),
        HOME=str(tmp_path),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        KIRO_API_BASE_URL="http://127.0.0.1:9",  # never reached: no request is made
        **extra,
    )
    return env


@dataclass
class Headless:
    process: subprocess.Popen[str]
    stdout: str = ""
    stderr: str = ""

    def stop(self) -> int:
        self.process.terminate()
        out, err = self.process.communicate(timeout=20)
        self.stdout += out
        self.stderr += err
        return self.process.returncode


@contextmanager
def headless(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Headless]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kiro_tray", "--headless", "--port", "0", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = Headless(process)
    try:
        yield run
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def read_until(run: Headless, needle: str) -> str:
    """Lines of stderr up to the first holding ``needle`` (the process ends the wait if it exits)."""
    stream = run.process.stderr
    assert stream is not None
    for line in iter(stream.readline, ""):
        run.stderr += line
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} never appeared:\n{run.stderr}")


def test_headless_lines_name_the_launcher_and_the_key_prints_again(tmp_path: Path) -> None:
    env = headless_env(tmp_path, **{LAUNCHER_ENV: "./kiro-api-start.command"})
    with headless(tmp_path, env) as run:
        line = read_until(run, "listening on")
        assert "(client key: `./kiro-api-start.command --print-key`;" in line
        assert run.stop() == 0
        assert (
            "New client API key (saved; `./kiro-api-start.command --print-key` shows it again)" in run.stdout
        )
        key = run.stdout.split(": ")[-1].strip()
    printed = subprocess.run(
        [sys.executable, "-m", "kiro_tray", "--print-key"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert printed.stdout.strip() == key


# ---- listening beyond loopback -------------------------------------------------------------------------


def test_any_host_with_a_key_nobody_has_seen_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiro_tray", "--headless", "--port", "0", "--host", "0.0.0.0"],
        cwd=tmp_path,
        env=headless_env(tmp_path, **{LAUNCHER_ENV: "./kiro-api-start.command"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    refusal = [line for line in result.stderr.splitlines() if line.startswith("kiro-tray:")]
    assert refusal == [
        "kiro-tray: not listening on 0.0.0.0 with a client key nobody has seen yet: set PROXY_API_KEY, "
        "start once on 127.0.0.1 (`./kiro-api-start.command`) to make a key, "
        "or add --allow-remote."
    ]
    assert "WARNING" in result.stderr and "reachable from the network" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "config" / "secrets.json").exists()  # no key was made


@pytest.mark.parametrize(
    ("args", "dotenv", "extra_env"),
    [
        (["--allow-remote"], "", {}),
        ([], "ALLOW_REMOTE=true\n", {}),
        ([], "", {"PROXY_API_KEY": "kt-chosen-by-the-user"}),
    ],
    ids=["flag", "dotenv", "explicit-key"],
)
def test_any_host_starts_when_allowed_and_names_the_bound_address(
    tmp_path: Path, args: list[str], dotenv: str, extra_env: dict[str, str]
) -> None:
    (tmp_path / ".env").write_text(dotenv)
    with headless(tmp_path, headless_env(tmp_path, **extra_env), "--host", "0.0.0.0", *args) as run:
        warning = read_until(run, "reachable from the network")
        assert "WARNING" in warning
        line = read_until(run, "listening on")
        port = int(line.split("http://0.0.0.0:")[1].split(",")[0])
        assert (
            f"listening on http://0.0.0.0:{port}, reachable as http://{socket.gethostname()}:{port} " in line
        )
        assert run.stop() == 0
