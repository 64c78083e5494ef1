"""``kiro-tray accounts ...`` through the real process, against the fake Kiro."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .fake_kiro.server import FakeKiro, usage_answer
from .harness import LoopThread


def run(config: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KIRO_TRAY_CONFIG_DIR": str(config),
        "KIRO_API_BASE_URL": url,
        "KIRO_AUTH_BASE_URL": url,
        "KIRO_OIDC_BASE_URL": url,
        "KIRO_MANAGEMENT_BASE_URL": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "kiro_tray", "accounts", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_accounts_cli_adds_checks_lists_and_refuses_duplicates(tmp_path: Path) -> None:
    thread = LoopThread()
    fake = FakeKiro()
    try:
        url = thread.run(fake.start())
        account = thread.call(fake.add_account)
        account.usage = usage_answer(312, 1000, plan="KIRO PRO")
        added = run(tmp_path, url, "add", "--name", "work", "--refresh-token", account.refresh_token)
        assert added.returncode == 0, added.stderr
        again = run(tmp_path, url, "add", "--name", "twice", "--refresh-token", account.refresh_token)
        assert again.returncode == 1 and "already the account 'work'" in again.stderr
        checked = run(tmp_path, url, "check", "work")
        assert checked.returncode == 0, checked.stderr
        row = checked.stdout.splitlines()[1].split()
        assert row[:5] == ["work", "social", "app", "available", "312/1000"]
        assert account.refresh_token not in checked.stdout + checked.stderr
        assert run(tmp_path, url, "disable", "work").returncode == 0
        assert "disabled" in run(tmp_path, url, "list").stdout
        assert run(tmp_path, url, "remove", "work").returncode == 0
        assert "work" not in run(tmp_path, url, "list").stdout
    finally:
        thread.run(fake.close())
        thread.close()
