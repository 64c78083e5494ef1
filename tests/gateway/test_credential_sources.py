"""Credential sources seen from the running gateway: auto-detection, write-back of rotated tokens, IdC."""

from __future__ import annotations

import json
import sqlite3
import stat
import urllib.request
from pathlib import Path

import pytest

from ..harness import (
    ALLOW_NO_CREDENTIALS,
    ALLOW_REFRESH_FAILURES,
    ALLOW_RETRIES,
    Gateway,
    start_gateway,
    stop_gateway,
)


def health(gw: Gateway) -> dict[str, object]:
    with urllib.request.urlopen(gw.url + "/health", timeout=10) as resp:
        return json.loads(resp.read())


def chat(gw: Gateway) -> str:
    reply = gw.openai().chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    return reply.choices[0].message.content or ""


@pytest.fixture
def blank(tmp_path: Path) -> tuple[Gateway, Path]:
    """A gateway with no configured credentials and an empty home; tests put a login in place."""
    gw = start_gateway(tmp_path, with_account=False)
    return gw, tmp_path


@ALLOW_NO_CREDENTIALS
def test_kiro_ide_login_is_auto_detected_and_rotated_tokens_written_back(blank: tuple[Gateway, Path]) -> None:
    gw, home = blank
    try:
        account = gw.thread.call(gw.fake.add_account, None)
        token_file = home / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
        token_file.parent.mkdir(parents=True)
        original = {
            "accessToken": "expired-access-token-value",
            "refreshToken": account.refresh_token,
            "expiresAt": "2020-01-01T00:00:00.000Z",
            "authMethod": "social",
            "provider": "Github",
            "profileArn": account.profile_arn,
            "someFieldWeDoNotKnow": {"keep": True},
        }
        token_file.write_text(json.dumps(original))
        token_file.chmod(0o600)
        gw.run(gw.service.accounts.reset())
        info = health(gw)["credentials"]
        assert isinstance(info, dict)
        assert info["source"] == "kiro_ide" and info["auto_detected"] is True
        assert "kiro-auth-token.json" in str(info["where"])
        assert any("kiro-auth-token.json" in line.message for line in gw.logs.ring.lines)
        assert chat(gw).startswith("You said")
        saved = json.loads(token_file.read_text())
        assert saved["refreshToken"] == account.refresh_token  # the rotated one, written back
        assert saved["refreshToken"] != original["refreshToken"]
        assert saved["someFieldWeDoNotKnow"] == {"keep": True}
        assert saved["expiresAt"] != original["expiresAt"]
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    finally:
        stop_gateway(gw)


@ALLOW_NO_CREDENTIALS
def test_kiro_cli_database_with_idc_login(blank: tuple[Gateway, Path]) -> None:
    gw, home = blank
    try:
        account = gw.thread.call(lambda: gw.fake.add_account(None, kind="idc"))
        db = home / "data.sqlite3"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(
                "INSERT INTO auth_kv VALUES (?, ?)",
                (
                    "kirocli:odic:token",
                    json.dumps({"refresh_token": account.refresh_token, "region": "us-east-1"}),
                ),
            )
            conn.execute(
                "INSERT INTO auth_kv VALUES (?, ?)",
                (
                    "kirocli:odic:device-registration",
                    json.dumps({"client_id": account.client_id, "client_secret": account.client_secret}),
                ),
            )
        conn.close()
        gw.restart_with(kiro_cli_db_file=str(db))
        assert chat(gw)
        assert gw.fake.auth.oidc_calls == 1 and gw.fake.auth.refresh_calls == 0
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT value FROM auth_kv WHERE key = 'kirocli:odic:token'").fetchone()
        conn.close()
        assert json.loads(row[0])["refresh_token"] == account.refresh_token  # rotated and persisted
        # IdC logins send no profileArn (kiro-protocol.md 1.4)
        assert "profileArn" not in gw.fake.requests[-1].body
    finally:
        stop_gateway(gw)


@ALLOW_NO_CREDENTIALS
def test_seed_format_creds_file(blank: tuple[Gateway, Path]) -> None:
    gw, home = blank
    try:
        account = gw.thread.call(gw.fake.add_account, None)
        creds = home / "creds.json"
        creds.write_text(
            json.dumps({"refreshToken": account.refresh_token, "profileArn": account.profile_arn})
        )
        gw.restart_with(kiro_creds_file=str(creds))
        assert chat(gw)
        assert gw.fake.requests[-1].body["profileArn"] == account.profile_arn
        assert json.loads(creds.read_text())["refreshToken"] == account.refresh_token
    finally:
        stop_gateway(gw)


@ALLOW_RETRIES
@ALLOW_REFRESH_FAILURES
def test_invalid_grant_tells_the_user_to_log_in_again(gateway: Gateway) -> None:
    import openai

    gateway.thread.call(setattr, gateway.fake.auth, "refresh_failure", "invalid_grant")
    with pytest.raises(openai.AuthenticationError, match="log in to Kiro again"):
        chat(gateway)
    calls = gateway.fake.auth.refresh_calls
    with pytest.raises(openai.AuthenticationError, match="log in to Kiro again"):
        chat(gateway)
    assert gateway.fake.auth.refresh_calls == calls  # no refresh loop on a dead grant
    info = health(gateway)
    assert info["status"] == "degraded"
    assert info["credentials"]["state"] == "invalid"  # type: ignore[index]
