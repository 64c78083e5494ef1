"""Client keys, multi-tenant mode, the DNS-rebinding guard and CORS, through the official SDKs."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from ..harness import TEST_KEY, Gateway

MESSAGES = [{"role": "user", "content": "hello"}]


def test_wrong_or_missing_key_is_401_in_the_openai_envelope(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(api_key="wrong").chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
    assert caught.value.status_code == 401
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "invalid_api_key" and body["message"] and "param" in body and body["type"]


def test_wrong_key_is_401_in_the_anthropic_envelope(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        gateway.anthropic(api_key="wrong").messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=MESSAGES
        )
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid API key."},
    }


def test_bearer_and_x_api_key_both_work(gateway: Gateway) -> None:
    via_x_api_key = gateway.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=MESSAGES
    )
    via_bearer = gateway.anthropic(api_key=None, auth_token=TEST_KEY).messages.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=MESSAGES
    )
    assert via_x_api_key.content and via_bearer.content


def _bearer_accounts(gateway: Gateway) -> list[str]:
    """The fake account (by its first refresh token) that each generate request authenticated as."""
    owners = []
    for received in gateway.fake.requests:
        token = received.headers.get("Authorization", "").removeprefix("Bearer ")
        account, _ = gateway.fake.auth.account_for_access_token(token)
        assert account is not None
        owners.append(account.profile_arn)
    return owners


def test_multi_tenant_key_uses_the_tenants_own_tokens(gateway: Gateway) -> None:
    tenant = gateway.thread.call(gateway.fake.add_account, None)
    tenant.profile_arn = "arn:aws:codewhisperer:us-east-1:999999999999:profile/TENANT"
    client = gateway.openai(api_key=f"{TEST_KEY}:{tenant.refresh_token}")
    client.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
    gateway.openai().chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
    assert gateway.account is not None
    assert _bearer_accounts(gateway) == [tenant.profile_arn, gateway.account.profile_arn]


def test_tenants_under_concurrency_never_share_tokens(gateway: Gateway) -> None:
    tenants = [gateway.thread.call(gateway.fake.add_account, None) for _ in range(4)]
    for i, tenant in enumerate(tenants):
        tenant.profile_arn = f"arn:aws:codewhisperer:us-east-1:00000000000{i}:profile/T{i}"
        tenant.rotate = False  # keep the refresh token stable so the test can name it 5 times

    async def one(tenant_index: int, n: int) -> tuple[int, str]:
        tenant = tenants[tenant_index]
        client = gateway.async_openai(api_key=f"{TEST_KEY}:{tenant.refresh_token}")
        reply = await client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": f"tenant {tenant_index} call {n}"}],
        )
        await client.close()
        return tenant_index, reply.choices[0].message.content or ""

    async def all_calls() -> list[tuple[int, str]]:
        return await asyncio.gather(*(one(i % 4, i) for i in range(20)))

    results = asyncio.run(all_calls())
    assert len(results) == 20
    for received in gateway.fake.requests:
        token = received.headers["Authorization"].removeprefix("Bearer ")
        account, _ = gateway.fake.auth.account_for_access_token(token)
        assert account is not None
        text = json.dumps(received.body)
        index = tenants.index(account)
        assert f"tenant {index} call" in text
    assert all(t.refresh_count == 1 for t in tenants)  # one refresh per tenant, single-flight


def test_empty_tenant_token_is_rejected(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError, match="refresh token part is empty"):
        gateway.openai(api_key=f"{TEST_KEY}:").chat.completions.create(
            model="claude-sonnet-4-5", messages=MESSAGES
        )


def _raw(
    gateway: Gateway, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(gateway.url + path, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_non_loopback_host_header_is_refused(gateway: Gateway) -> None:
    status, _, body = _raw(gateway, "/health", {"Host": "attacker.example:8000"})
    assert status == 403
    assert "DNS-rebinding" in json.loads(body)["error"]["message"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "127.0.0.2:1"):
        assert _raw(gateway, "/health", {"Host": host})[0] == 200


def test_cors_is_off_by_default(gateway: Gateway) -> None:
    _, headers, _ = _raw(gateway, "/health", {"Origin": "https://example.com"})
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.gateway_settings(cors_origins="https://app.example")
def test_cors_only_for_listed_origins(gateway: Gateway) -> None:
    _, headers, _ = _raw(gateway, "/health", {"Origin": "https://app.example"})
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in headers
    _, headers, _ = _raw(gateway, "/health", {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    status, headers, _ = _raw(
        gateway,
        "/v1/chat/completions",
        {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        method="OPTIONS",
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://app.example"
