"""Build this platform's PyInstaller bundle, then smoke-test it against the fake Kiro.

    .venv/bin/python packaging/build.py                # build, then smoke-test
    .venv/bin/python packaging/build.py --no-smoke     # build only
    .venv/bin/python packaging/build.py --smoke-only   # smoke-test the bundle already in dist/

The bundle lands in ``dist/`` (Linux and Windows: ``dist/kiro-tray/``; macOS: ``dist/Kiro Tray.app``),
PyInstaller's work files in ``build/``; ``--dist`` and ``--work`` move them. Needs PyInstaller in the
environment running this script (``pip install pyinstaller``) and is run from the repository's venv,
which also provides the fake Kiro (``python -m tests.fake_kiro``).

The smoke test starts the fake Kiro on a free port, starts the bundle ``--headless`` against it with a
temporary config dir, waits for ``GET /health``, lists ``/v1/models``, streams one chat completion with
plain HTTP and checks the stream carries text and ends with ``data: [DONE]``, then stops it with SIGTERM.
Then it starts the tray app from the bundle with ``QT_QPA_PLATFORM=offscreen`` and waits for
``/health`` again, which proves the bundle's Qt parts load (``--no-gui`` skips that). Exit code 0 when
everything passed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_VARIABLES = ("REFRESH_TOKEN", "KIRO_API_BASE_URL", "KIRO_AUTH_BASE_URL", "KIRO_OIDC_BASE_URL")
START_TIMEOUT = 60.0  # a first start may unpack caches; normal is well under a second


class SmokeFailure(Exception):
    """A step of the smoke test failed; the message says which and why."""


def spec_and_executable(dist: Path) -> tuple[Path, Path]:
    """This platform's spec file and the executable it produces under ``dist``."""
    packaging = ROOT / "packaging"
    if sys.platform == "darwin":
        return packaging / "macos.spec", dist / "Kiro Tray.app" / "Contents" / "MacOS" / "kiro-tray"
    if sys.platform == "win32":
        return packaging / "windows.spec", dist / "kiro-tray" / "kiro-tray.exe"
    return packaging / "linux.spec", dist / "kiro-tray" / "kiro-tray"


def build(spec: Path, dist: Path, work: Path) -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        raise SmokeFailure(f"PyInstaller is not installed: {sys.executable} -m pip install pyinstaller")
    print(f"== building {spec.name} into {dist}", flush=True)
    started = time.monotonic()
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN"]
    result = subprocess.run([*command, "--distpath", str(dist), "--workpath", str(work), str(spec)], cwd=ROOT)
    if result.returncode != 0:
        raise SmokeFailure(f"PyInstaller failed (exit code {result.returncode}); its messages are above")
    print(f"   built in {time.monotonic() - started:.1f} s", flush=True)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def clean_environment() -> dict[str, str]:
    """This environment minus Kiro Tray's own settings and Python's path variables, so that only what
    the smoke test sets reaches the bundle."""
    from kiro_tray.settings import DECLARATIONS

    names = {setting.env for setting in DECLARATIONS} | {"PYTHONPATH", "PYTHONHOME", "KIRO_TRAY_CONFIG_DIR"}
    return {key: value for key, value in os.environ.items() if key not in names}


class Process:
    """A child process whose output goes to a log file, stopped with SIGTERM on exit."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path, **popen: Any) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.popen = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, **popen)

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(f"   | {line}" for line in text[-lines:])

    def fail(self, message: str) -> SmokeFailure:
        return SmokeFailure(f"{message}\n   last lines of {self.name}'s output:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (TerminateProcess on Windows), then the exit code; kills it after ``timeout``."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise self.fail(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM") from None
        self._log.close()
        return self.popen.returncode


@contextlib.contextmanager
def running(name: str, command: Sequence[str], log_path: Path, **popen: Any) -> Iterator[Process]:
    process = Process(name, command, log_path, **popen)
    try:
        yield process
    finally:
        with contextlib.suppress(SmokeFailure):
            process.stop()


def wait_for_fake(fake: Process, timeout: float = 30.0) -> dict[str, str]:
    """The environment variables the fake Kiro prints, read from its output."""
    pattern = re.compile(r"\b(" + "|".join(FAKE_VARIABLES) + r")=(\S+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = dict(pattern.findall(fake.log_path.read_text(encoding="utf-8", errors="replace")))
        if all(name in found for name in FAKE_VARIABLES):
            return found
        if fake.popen.poll() is not None:
            raise fake.fail(f"the fake Kiro exited with code {fake.popen.returncode}")
        time.sleep(0.05)
    raise fake.fail(f"the fake Kiro did not print {', '.join(FAKE_VARIABLES)} within {timeout:.0f} s")


def http_json(url: str, key: str | None = None, timeout: float = 10.0) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        return json.load(response)


def wait_for_health(
    app: Process, base_url: str, timeout: float = START_TIMEOUT
) -> tuple[dict[str, Any], float]:
    """``GET /health``'s JSON once it answers, and the seconds it took from the process start."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if app.popen.poll() is not None:
            raise app.fail(f"{app.name} exited with code {app.popen.returncode} before answering /health")
        with contextlib.suppress(OSError):  # refused (not listening yet), reset, timeout
            health = http_json(f"{base_url}/health", timeout=2.0)
            if not isinstance(health, dict) or health.get("name") != "kiro-tray":
                raise app.fail(f"/health answered {health!r}, not Kiro Tray's health document")
            return health, time.monotonic() - started
        time.sleep(0.05)
    raise app.fail(f"{app.name} did not answer {base_url}/health within {timeout:.0f} s")


def stream_chat(base_url: str, key: str, model: str) -> tuple[str, list[str]]:
    """Stream one chat completion: (the text it carried, the non-empty SSE lines)."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        lines = [raw.decode("utf-8").strip() for raw in response]
    lines = [line for line in lines if line]
    text = ""
    for line in lines:
        if line.startswith("data: {"):
            for choice in json.loads(line.removeprefix("data: ")).get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
    return text, lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def smoke(executable: Path, *, gui: bool) -> None:
    if not executable.is_file():
        raise SmokeFailure(f"no bundle to test: {executable} does not exist (build it first)")
    with tempfile.TemporaryDirectory(prefix="kiro-tray-smoke-") as scratch:
        work = Path(scratch)
        base_env = clean_environment()
        fake_command = [sys.executable, "-m", "tests.fake_kiro", "--port", "0"]
        with running("the fake Kiro", fake_command, work / "fake.log", cwd=ROOT, env=base_env) as fake:
            upstream = wait_for_fake(fake)
            key = secrets.token_urlsafe(24)
            env = {**base_env, **upstream, "PROXY_API_KEY": key, "KIRO_TRAY_CONFIG_DIR": str(work / "config")}
            smoke_headless(executable, work, env, key)
            if gui:
                smoke_gui(executable, work, env)


def launch_command(executable: Path, *args: str) -> tuple[list[str], str]:
    """The command line starting the bundle on a free local port, and its base URL."""
    port = free_port()
    return [str(executable), *args, "--host", "127.0.0.1", "--port", str(port)], f"http://127.0.0.1:{port}"


def smoke_headless(executable: Path, work: Path, env: dict[str, str], key: str) -> None:
    print("== smoke test: the bundle --headless against the fake Kiro", flush=True)
    command, base_url = launch_command(executable, "--headless")
    with running("the bundle (headless)", command, work / "headless.log", cwd=work, env=env) as app:
        health, seconds = wait_for_health(app, base_url)
        print(f"   /health answered after {seconds:.2f} s: status {health.get('status')!r}", flush=True)
        models = [m["id"] for m in http_json(f"{base_url}/v1/models", key).get("data", [])]
        if not models:
            raise app.fail("/v1/models listed no model")
        try:
            text, lines = stream_chat(base_url, key, models[0])
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:500]
            raise app.fail(f"the streamed chat completion failed: HTTP {exc.code} {detail}") from None
        if lines[-1:] != ["data: [DONE]"]:
            raise app.fail(f"the stream did not end with 'data: [DONE]' but with {lines[-1:]!r}")
        if not text:
            raise app.fail("the stream carried no text")
        print(f"   streamed {len(lines)} SSE lines from {models[0]}, ending with data: [DONE]", flush=True)
        code = app.stop()
        if sys.platform != "win32" and code != 0:
            raise app.fail(f"the bundle exited with code {code} after SIGTERM (expected 0)")


def smoke_gui(executable: Path, work: Path, env: dict[str, str]) -> None:
    print("== smoke test: the bundle's tray app, offscreen", flush=True)
    command, base_url = launch_command(executable)
    gui_env = {**env, "QT_QPA_PLATFORM": "offscreen"}
    with running("the bundle (tray app)", command, work / "gui.log", cwd=work, env=gui_env) as app:
        _, seconds = wait_for_health(app, base_url)
        print(f"   the tray app served /health after {seconds:.2f} s", flush=True)
        code = app.stop()
        if sys.platform != "win32" and code != 0:
            raise app.fail(f"the tray app exited with code {code} after SIGTERM (expected 0)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller's work files (build/)")
    parser.add_argument("--no-smoke", action="store_true", help="build only")
    parser.add_argument("--smoke-only", action="store_true", help="test the bundle already built")
    parser.add_argument("--no-gui", action="store_true", help="skip the offscreen tray-app check")
    args = parser.parse_args(argv)
    spec, executable = spec_and_executable(args.dist.resolve())
    try:
        if not args.smoke_only:
            build(spec, args.dist.resolve(), args.work.resolve())
            bundle = executable.parents[2] if sys.platform == "darwin" else executable.parent
            print(f"   bundle: {bundle} ({folder_size(bundle) / 1e6:.0f} MB)", flush=True)
        if not args.no_smoke:
            smoke(executable, gui=not args.no_gui)
            print("== smoke test passed", flush=True)
    except SmokeFailure as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
