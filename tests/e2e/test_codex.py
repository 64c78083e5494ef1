"""Codex itself (``@openai/codex`` from the npm registry) through the gateway's Responses API to the fake.

``codex exec`` runs one non-interactive task with a ``config.toml`` under a temporary ``CODEX_HOME`` that
points a custom provider at the gateway (``wire_api = "responses"``). The fake's responder turns a
``[[tool:NAME {json}]]`` directive in the prompt into a real tool call, so one test covers a shell round
trip: Codex runs ``exec_command``, sends the output back as ``function_call_output``, and prints the
model's final answer (the fake echoes the tool result).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..harness import TEST_KEY, Gateway

CODEX = Path(__file__).parent / "node_modules" / ".bin" / "codex"
MODEL = "claude-sonnet-4-5"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CODEX.exists(),
        reason="Codex is not installed (run-tests.sh installs it with npm; npm was unavailable)",
    ),
]

CONFIG = """\
model = "{model}"
model_provider = "kiro"

[model_providers.kiro]
name = "Kiro Tray"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "KIRO_TRAY_KEY"
request_max_retries = 0
stream_max_retries = 0
"""


def run_codex(gateway: Gateway, root: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    home = root / "codex-home"
    work = root / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CONFIG.format(model=MODEL, base_url=gateway.url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "CODEX_HOME": str(home),
        "KIRO_TRAY_KEY": TEST_KEY,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "-s", "danger-full-access", "--json", prompt],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
    )


def codex_events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert proc.returncode == 0, (
        f"codex failed ({proc.returncode}): {proc.stdout[-3000:]} {proc.stderr[-3000:]}"
    )
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def agent_text(events: list[dict[str, object]]) -> str:
    texts = []
    for event in events:
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "agent_message":
            texts.append(str(item.get("text")))
    return "\n".join(texts)


def kiro_bodies(gateway: Gateway) -> list[dict[str, object]]:
    return [r.body for r in gateway.fake.requests if r.path == "/generateAssistantResponse"]


def test_codex_plain_turn(gateway: Gateway, tmp_path: Path) -> None:
    events = codex_events(run_codex(gateway, tmp_path, "Say hello to the gateway"))
    text = agent_text(events)
    assert "You said:" in text and "Say hello to the gateway" in text
    body = kiro_bodies(gateway)[0]
    state = body["conversationState"]
    assert isinstance(state, dict)
    message = state["currentMessage"]["userInputMessage"]
    names = [t["toolSpecification"]["name"] for t in message["userInputMessageContext"]["tools"]]
    assert "exec_command" in names  # Codex's tools made it through, names intact
    assert any(name.startswith("multi_agent_v1__") for name in names)  # its namespace tool, flattened
    assert all(len(name) <= 64 for name in names)
    assert "web_search" not in names  # a hosted tool: dropped
    assert "You are a coding agent" in json.dumps(state)  # the developer messages became the system text


def test_codex_shell_tool_round_trip(gateway: Gateway, tmp_path: Path) -> None:
    marker = "kiro-e2e-" + os.urandom(4).hex()
    call = json.dumps({"cmd": f"echo {marker}"})
    events = codex_events(run_codex(gateway, tmp_path, f"Please run [[tool:exec_command {call}]]"))
    commands = [
        e["item"]
        for e in events
        if isinstance(e.get("item"), dict) and e["item"].get("type") == "command_execution"  # type: ignore[union-attr]
    ]
    assert commands and marker in json.dumps(commands)  # Codex ran the command the fake asked for
    assert "returned:" in agent_text(events)  # the fake answered the output Codex sent back
    bodies = kiro_bodies(gateway)
    results = [
        b["conversationState"]["currentMessage"]["userInputMessage"]  # type: ignore[index]
        .get("userInputMessageContext", {})
        .get("toolResults")
        for b in bodies
    ]
    assert any(r and marker in json.dumps(r) for r in results)
