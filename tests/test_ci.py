"""``.ci/run`` insists on a clean checkout: before the test run (nothing runs on a dirty one) and after it
(the run creates only ignored files). Run in a scratch clone whose ``run-tests.sh`` is a stub."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUB = """#!/usr/bin/env bash
touch ran-the-tests.marker-file-outside-git
[ -z "${STUB_CREATES:-}" ] || { mkdir -p "$(dirname "$STUB_CREATES")"; touch "$STUB_CREATES"; }
exit "${STUB_EXIT:-0}"
"""

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("bash") is None, reason="needs git"
)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=ci-test", "-c", "user.email=ci-test@example.invalid", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if git(ROOT, "rev-parse", "--is-inside-work-tree").strip() != "true":
        pytest.skip("the suite runs outside a git checkout")
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(ROOT), str(repo))
    shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")  # this working tree's version, committed or not
    (repo / "run-tests.sh").write_text(STUB)
    (repo / ".git" / "info" / "exclude").write_text("*.marker-file-outside-git\n")
    git(repo, "commit", "-q", "-a", "--allow-empty", "-m", "the stub test command")
    return repo


def ci(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(repo / ".ci" / "run")],
        cwd=repo,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ran(repo: Path) -> bool:
    return (repo / "ran-the-tests.marker-file-outside-git").exists()


def test_a_clean_checkout_runs_the_tests_and_passes_their_status_on(clone: Path) -> None:
    assert ci(clone).returncode == 0 and ran(clone)
    assert ci(clone, STUB_EXIT="3").returncode == 3


def test_files_the_run_creates_may_only_be_ignored_ones(clone: Path) -> None:
    assert ci(clone, STUB_CREATES=".venv/bin/python").returncode == 0
    result = ci(clone, STUB_CREATES="tests/left-behind.txt")
    assert result.returncode == 1
    assert "the checkout is not clean after the test run" in result.stderr
    assert "?? tests/left-behind.txt" in result.stderr


@pytest.mark.parametrize("change", ["untracked", "modified"])
def test_a_dirty_checkout_fails_before_anything_runs(clone: Path, change: str) -> None:
    if change == "untracked":
        (clone / "stray.txt").write_text("left over\n")
        line = "?? stray.txt"
    else:
        (clone / "README.md").write_text("rewritten by the checkout\n")
        line = " M README.md"
    result = ci(clone)
    assert result.returncode == 1
    assert "the checkout is not clean right after checkout, before anything ran" in result.stderr
    assert line in result.stderr
    assert not ran(clone)
