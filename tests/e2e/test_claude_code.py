"""Claude Code itself (from the npm registry) through the gateway to the fake Kiro.

``claude -p`` runs one non-interactive turn. The fake's responder turns a ``[[tool:NAME {json}]]`` directive
in the prompt into a real tool call, so one test covers a full tool round trip: Claude Code runs Bash,
sends the tool_result back, and prints the model's final answer.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..harness import TEST_KEY, Gateway

CLAUDE = Path(__file__).parent / "node_modules" / ".bin" / "claude"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CLAUDE.exists(),
        reason="Claude Code is not installed (run-tests.sh installs it with npm; npm was unavailable)",
    ),
]


def run_claude(
    gateway: Gateway, home: Path, prompt: str, *extra: str, model: str | None = "claude-sonnet-4-5"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": TEST_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "DISABLE_AUTOUPDATER": "1",
        "CI": "true",
    }
    if model is not None:  # as the README tells users to wire it
        env["ANTHROPIC_MODEL"] = model
        env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = "claude-haiku-4-5"
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", *extra],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
    )


def result_text(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"claude failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    )
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome.get("is_error") is False, outcome
    return str(outcome["result"])


def test_claude_code_plain_turn(gateway: Gateway, tmp_path: Path) -> None:
    text = result_text(run_claude(gateway, tmp_path / "home", "Say hello to the gateway"))
    assert "You said:" in text
    assert "Say hello to the gateway" in text
    first = next(r for r in gateway.fake.requests if r.path == "/generateAssistantResponse")
    tools = first.body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"][
        "tools"
    ]
    assert len(tools) >= 10  # Claude Code's own tool set made it through, names and schemas intact
    assert all(len(t["toolSpecification"]["name"]) <= 64 for t in tools)


def test_claude_code_tool_round_trip(gateway: Gateway, tmp_path: Path) -> None:
    marker = "kiro-e2e-" + os.urandom(4).hex()
    call = json.dumps({"command": f"echo {marker}", "description": "Print a marker"})
    proc = run_claude(
        gateway, tmp_path / "home", f"Please run [[tool:Bash {call}]]", "--allowedTools", "Bash"
    )
    text = result_text(proc)
    assert marker in text  # the fake echoes the tool result Claude Code sent back
    bodies = [r.body for r in gateway.fake.requests if r.path == "/generateAssistantResponse"]
    results = [
        b["conversationState"]["currentMessage"]["userInputMessage"]
        .get("userInputMessageContext", {})
        .get("toolResults")
        for b in bodies
    ]
    assert any(r and marker in json.dumps(r) for r in results)


def test_claude_code_with_its_own_default_model(gateway: Gateway, tmp_path: Path) -> None:
    """No model override: Claude Code picks its newest Opus with a context suffix (``claude-opus-4-8[1m]``),
    sends adaptive thinking and a mid-conversation system message; all of it must go through."""
    proc = run_claude(gateway, tmp_path / "home", "Hello with defaults", model=None)
    assert "Hello with defaults" in result_text(proc)
    sent = [r.body for r in gateway.fake.requests if r.path == "/generateAssistantResponse"]
    assert sent[-1]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"].startswith(
        "claude-"
    )
