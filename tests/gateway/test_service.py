"""GatewayService and the info endpoints, over real HTTP against the fake Kiro."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ..harness import (
    ALLOW_ALREADY_RUNNING,
    ALLOW_NO_CREDENTIALS,
    ALLOW_PORT_BUSY,
    TEST_KEY,
    Gateway,
    start_gateway,
    stop_gateway,
)

REPO = Path(__file__).resolve().parents[2]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_health_needs_no_key_and_reveals_no_secret(gateway: Gateway) -> None:
    status, _, body = get(gateway.url + "/health")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["name"] == "kiro-tray"
    assert health["credentials"]["state"] in ("ok", "ready")  # refreshed on first use
    assert health["credentials"]["source"] == "env"
    assert gateway.account is not None
    assert gateway.account.refresh_token not in body.decode()
    assert TEST_KEY not in body.decode()


def test_index_lists_endpoints_without_a_key(gateway: Gateway) -> None:
    status, _, body = get(gateway.url + "/")
    assert status == 200
    info = json.loads(body)
    assert "POST /v1/chat/completions" in info["endpoints"]["openai"]
    assert "POST /v1/messages" in info["endpoints"]["anthropic"]


def test_metrics_needs_the_key(gateway: Gateway) -> None:
    status, _, body = get(gateway.url + "/metrics")
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"


def test_metrics_json_and_prometheus(gateway: Gateway) -> None:
    client = gateway.openai()
    client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    status, _, body = get(gateway.url + "/metrics", {"Authorization": f"Bearer {TEST_KEY}"})
    assert status == 200
    snapshot = json.loads(body)
    assert snapshot["requests_total"] == 1
    assert snapshot["requests_by_model"] == {"claude-sonnet-4-5": 1}
    assert snapshot["requests_by_status"] == {"200": 1}
    assert snapshot["latency_ms"]["total"]["p50"] > 0
    status, headers, text = get(gateway.url + "/metrics?format=prometheus", {"x-api-key": TEST_KEY})
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'kiro_tray_requests_by_model_total{model="claude-sonnet-4-5"} 1' in text.decode()
    status, headers, _ = get(gateway.url + "/metrics", {"x-api-key": TEST_KEY, "Accept": "text/plain"})
    assert headers["Content-Type"].startswith("text/plain")


def test_stop_refuses_and_start_answers_again(gateway: Gateway) -> None:
    url = gateway.url
    gateway.run(gateway.service.stop())
    assert gateway.service.state == "stopped"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/health", timeout=5)
    gateway.run(gateway.service.start())
    assert gateway.service.state == "running"
    assert get(gateway.url + "/health")[0] == 200


def test_state_changes_are_published(gateway: Gateway) -> None:
    seen: list[str] = []
    gateway.service.state_changed.connect(lambda event: seen.append(event.state))
    gateway.run(gateway.service.restart())
    assert seen == ["stopping", "stopped", "starting", "running"]


@ALLOW_PORT_BUSY
def test_busy_port_gives_a_clear_failed_state(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        gw = start_gateway(tmp_path, port=port)
        try:
            assert gw.service.state == "failed"
            assert gw.service.last_message is not None
            assert f"Port {port} is busy" in gw.service.last_message
        finally:
            stop_gateway(gw)


@ALLOW_ALREADY_RUNNING
def test_second_gateway_on_the_same_port_says_already_running(gateway: Gateway, tmp_path: Path) -> None:
    assert gateway.service.port is not None
    reasons: list[str | None] = []
    second = start_gateway(tmp_path, port=gateway.service.port)
    try:
        assert second.service.state == "failed"
        assert "already running" in (second.service.last_message or "")
        second.service.state_changed.connect(lambda e: reasons.append(e.reason))
        second.run(second.service.start())
        assert reasons[-1] == "already_running"
    finally:
        stop_gateway(second)


@ALLOW_NO_CREDENTIALS
def test_missing_credentials_are_reported_not_crashed(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, with_account=False)
    try:
        assert gw.service.state == "running"
        health = json.loads(get(gw.url + "/health")[2])
        assert health["status"] == "degraded"
        assert health["credentials"]["state"] == "missing"
        import openai

        with pytest.raises(openai.AuthenticationError) as caught:
            gw.openai().chat.completions.create(
                model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
            )
        assert "No Kiro credentials" in str(caught.value)
    finally:
        stop_gateway(gw)


# ---- headless process ----------------------------------------------------------------------------


def _headless_env(tmp_path: Path, gateway: Gateway, **extra: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PROXY_", "REFRESH_"))}
    env.update(
        KIRO_TRAY_CONFIG_DIR=str(tmp_path / "config"),
        KIRO_API_BASE_URL=gateway.fake.url,
        KIRO_AUTH_BASE_URL=gateway.fake.url,
        KIRO_OIDC_BASE_URL=gateway.fake.url,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        HOME=str(tmp_path),
        **extra,
    )
    return env


def test_headless_process_serves_and_stops_on_sigterm_without_qt(gateway: Gateway, tmp_path: Path) -> None:
    assert gateway.account is not None
    env = _headless_env(tmp_path, gateway, REFRESH_TOKEN=gateway.account.refresh_token)
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "kiro_tray", "--headless", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        assert proc.stderr is not None
        imports: list[str] = []
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("import time:"):
                imports.append(line)
            elif "listening on" in line:
                url = line.split("listening on ")[1].split()[0]
                assert "--print-key" in line
        assert url, "the headless gateway never logged its URL"
        assert json.loads(get(url + "/health")[2])["status"] == "ok"
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        imports += err.splitlines()
        assert not any("PySide6" in line or "qasync" in line for line in imports)
        assert "New client API key" in out  # first run: the generated key is shown once
        stored = (tmp_path / "config" / "secrets.json").read_text()
        assert out.split(": ")[-1].strip() in stored
        assert gateway.account.refresh_token not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--port", "70000"], {}, "PORT: 70000 is above the maximum 65535"),
        ([], {"FIRST_TOKEN_TIMEOUT": "-5"}, "FIRST_TOKEN_TIMEOUT: -5.0 is below the minimum"),
        ([], {"LOG_LEVEL": "chatty"}, "LOG_LEVEL: 'CHATTY' is not one of"),
        (
            [],
            {"KIRO_CREDS_FILE": "/nonexistent/creds.json"},
            "KIRO_CREDS_FILE: /nonexistent/creds.json does not exist",
        ),
        ([], {"MAX_RETRIES": "three"}, "MAX_RETRIES: 'three' is not a whole number"),
    ],
)
def test_invalid_settings_stop_start_up_with_one_line(
    gateway: Gateway, tmp_path: Path, args: list[str], env: dict[str, str], needle: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiro_tray", "--headless", *args],
        cwd=tmp_path,
        env=_headless_env(tmp_path, gateway, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_upstream_proxy_comes_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiro_tray.gateway.service import upstream_proxy

    for name in (
        "https_proxy",
        "HTTPS_PROXY",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    assert upstream_proxy("https://q.us-east-1.amazonaws.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    assert upstream_proxy("https://q.us-east-1.amazonaws.com") == "http://corp-proxy:3128"
    monkeypatch.setenv("NO_PROXY", ".amazonaws.com")
    assert upstream_proxy("https://q.us-east-1.amazonaws.com") is None
