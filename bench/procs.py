"""Child processes of the benchmark: spawn, wait until they answer, read their CPU and memory, stop them.

CPU and memory come straight from ``/proc/<pid>/stat`` (utime + stime of every thread) and
``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``). Writing ``5`` to ``/proc/<pid>/clear_refs`` resets the
high-water mark, so each phase gets its own peak. These reads are of kernel memory and take microseconds,
so they are made inline, between phases, even from the event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.002


class ProcessFailed(RuntimeError):
    """The system under test could not be set up: a child process exited or never answered, or refused us."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.perf_counter() just before the spawn

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / CLOCK_TICKS

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise ProcessFailed(f"{self.name}: no {key} in /proc/{self.pid}/status")

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def output_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ProcessFailed(
                f"{self.name} exited with code {self.popen.returncode}:\n{self.output_tail()}"
            )

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT)
        return self.popen.returncode


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    """Start ``python <args>`` in ``log_dir`` (away from any ``.env``), output in ``log_dir/<name>.log``."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        popen = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
        )
    return Child(name, popen, log_path, started)


async def wait_until_answering(
    session: aiohttp.ClientSession, child: Child, url: str, timeout: float, *, any_status: bool = False
) -> float:
    """Poll ``url`` until it answers 200 (any HTTP answer with ``any_status``); seconds since the spawn."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        child.check_alive()
        try:
            async with session.get(url) as resp:
                await resp.read()
                if resp.status == 200 or any_status:
                    return time.perf_counter() - child.started
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass  # not listening yet: poll again
        await asyncio.sleep(POLL_INTERVAL)
    raise ProcessFailed(f"{child.name} did not answer {url} within {timeout:g} s:\n{child.output_tail()}")
