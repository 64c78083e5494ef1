"""TokenManager against the fake Kiro's real refresh endpoints (port 0)."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from kiro_tray.protocol.errors import CredentialsError, UpstreamError
from kiro_tray.upstream.credentials import Credential, SourceKind
from kiro_tray.upstream.token_manager import TokenEvent, TokenManager, TokenRefreshed, TokenRefreshFailed
from tests.fake_kiro.auth import DEFAULT_PROFILE_ARN, Account
from tests.fake_kiro.server import FakeKiro
from tests.harness import ALLOW_REFRESH_FAILURES
from tests.logfail import ExpectLog

pytestmark = ALLOW_REFRESH_FAILURES  # failing refreshes are what most of these tests are about


class MemoryStore:
    """An in-memory CredentialStore (test double of the file/keyring boundary)."""

    kind: SourceKind = "env"
    description = "memory store"

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.saved: list[Credential] = []

    def load(self) -> Credential:
        return self.credential

    def save(self, credential: Credential) -> None:
        self.saved.append(credential)
        self.credential = credential


def in_(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def social(
    account: Account, *, access: str | None = "stale-access", expires_in: float | None = -60
) -> Credential:
    return Credential(
        auth_kind="social",
        refresh_token=account.refresh_token,
        access_token=access,
        expires_at=None if expires_in is None else in_(expires_in),
    )


def make(
    fake: FakeKiro,
    session: aiohttp.ClientSession,
    credential: Credential,
    *,
    auth_url: str | None = None,
    **kwargs: Any,
) -> tuple[TokenManager, list[TokenEvent]]:
    events: list[TokenEvent] = []
    manager = TokenManager(
        credential,
        session=session,
        auth_base_url=auth_url or fake.url,
        oidc_base_url=fake.url,
        on_event=events.append,
        refresh_backoff=0.001,
        **{"store": None, **kwargs},
    )
    return manager, events


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def valid_for_fake(fake: FakeKiro, credential: Credential) -> bool:
    assert credential.access_token is not None
    account, valid = fake.auth.account_for_access_token(credential.access_token)
    return account is not None and valid


@pytest.mark.asyncio
async def test_valid_token_is_used_without_refresh(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account()
    credential = social(account, access=account.issue_access_token(), expires_in=3600)
    manager, events = make(fake, session, credential)
    assert manager.state == "ok"
    assert await manager.get_token() is credential
    assert fake.auth.refresh_calls == 0 and manager.refresh_count == 0 and events == []


@pytest.mark.asyncio
async def test_twenty_concurrent_callers_share_one_refresh(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    fake.auth.refresh_delay = 0.05
    manager, events = make(fake, session, social(account))
    assert manager.state == "ready"
    results = await asyncio.gather(*(manager.get_token() for _ in range(20)))
    assert fake.auth.refresh_calls == 1
    assert len({r.access_token for r in results}) == 1
    assert valid_for_fake(fake, results[0])
    assert manager.refresh_count == 1 and manager.state == "ok"
    assert [type(e) for e in events] == [TokenRefreshed]
    assert isinstance(events[0], TokenRefreshed) and events[0].auth_kind == "social"
    assert await manager.get_token() is results[0]  # fresh now: no second refresh
    assert fake.auth.refresh_calls == 1


@pytest.mark.asyncio
async def test_refreshes_ahead_of_expiry_and_when_expiry_is_unknown(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    expiring, _ = make(fake, session, social(account, access=account.issue_access_token(), expires_in=300))
    assert expiring.state == "expiring"
    await expiring.get_token()
    assert fake.auth.refresh_calls == 1

    other = fake.add_account()
    unknown, _ = make(fake, session, social(other, access=other.issue_access_token(), expires_in=None))
    first = await unknown.get_token()
    assert fake.auth.refresh_calls == 2 and first.expires_at is not None
    assert await unknown.get_token() is first
    assert fake.auth.refresh_calls == 2


@pytest.mark.asyncio
async def test_expires_in_sets_expiry_and_defaults_to_an_hour(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    fake.auth.issued_ttl = 1200
    manager, _ = make(fake, session, social(account))
    fresh = await manager.get_token()
    left = fresh.seconds_left()
    assert left is not None and 1190 < left <= 1200


@pytest.mark.asyncio
async def test_twenty_concurrent_force_refreshes_share_one(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    stale = account.issue_access_token()
    manager, _ = make(fake, session, social(account, access=stale, expires_in=3600))
    fake.auth.refresh_delay = 0.05
    results = await asyncio.gather(*(manager.force_refresh(stale) for _ in range(20)))
    assert fake.auth.refresh_calls == 1
    assert {r.access_token for r in results} == {manager.credential.access_token}
    assert manager.credential.access_token != stale
    # a late caller holding the same stale token gets the new one without another refresh
    assert (await manager.force_refresh(stale)).access_token == manager.credential.access_token
    assert fake.auth.refresh_calls == 1


@pytest.mark.asyncio
async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    fake.auth.refresh_delay = 0.1
    manager, _ = make(fake, session, social(account))
    quitter = asyncio.create_task(manager.get_token())
    stayer = asyncio.create_task(manager.get_token())
    while fake.auth.refresh_calls == 0:
        await asyncio.sleep(0)
    quitter.cancel()
    fresh = await stayer
    assert quitter.cancelled()
    assert valid_for_fake(fake, fresh) and fake.auth.refresh_calls == 1


@pytest.mark.asyncio
async def test_rotated_token_is_persisted_and_used_next_time(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    original = account.refresh_token
    store = MemoryStore(social(account))
    manager, _ = make(fake, session, store.credential, store=store)
    await manager.get_token()
    assert len(store.saved) == 1
    saved = store.saved[0]
    assert saved.refresh_token == account.refresh_token != original
    assert saved.profile_arn == DEFAULT_PROFILE_ARN  # taken from the refresh answer
    assert saved.access_token == manager.credential.access_token
    # the rotated token works for the next refresh (the old one is spent at the fake)
    account.expire_access_tokens()
    manager.update_credential(social(account, access=manager.credential.access_token))
    await manager.get_token()
    assert fake.auth.refresh_calls == 2 and len(store.saved) == 2


@pytest.mark.asyncio
async def test_oidc_refresh_sends_camel_case_json(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account(kind="idc")
    credential = Credential(
        auth_kind="idc",
        refresh_token=account.refresh_token,
        client_id=account.client_id,
        client_secret=account.client_secret,
        region="eu-central-1",
    )
    store = MemoryStore(credential)
    manager, events = make(fake, session, credential, store=store)
    fresh = await manager.get_token()
    # the fake answers anything but camelCase JSON with a bare 400 invalid_request
    assert fake.auth.oidc_calls == 1 and fake.auth.refresh_calls == 0
    assert valid_for_fake(fake, fresh)
    assert fresh.client_id == account.client_id and fresh.region == "eu-central-1"
    assert store.saved[0].refresh_token == account.refresh_token
    assert isinstance(events[0], TokenRefreshed) and events[0].auth_kind == "idc"


@pytest.mark.asyncio
async def test_oidc_without_client_registration_is_invalid(
    fake: FakeKiro, session: aiohttp.ClientSession, expected_log: ExpectLog
) -> None:
    expected_log(r"^The Builder ID / Identity Center login has no client registration", logger="kiro_tray")
    account = fake.add_account(kind="idc")
    manager, _ = make(fake, session, Credential(auth_kind="idc", refresh_token=account.refresh_token))
    with pytest.raises(CredentialsError, match="clientSecret"):
        await manager.get_token()
    assert manager.state == "invalid" and fake.auth.oidc_calls == 0


@pytest.mark.asyncio
async def test_invalid_grant_fails_fast_without_a_refresh_loop(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    fake.auth.refresh_failure = "invalid_grant"
    manager, events = make(fake, session, social(account))
    with pytest.raises(CredentialsError, match=r"invalid_grant.*log in to Kiro again") as first:
        await manager.get_token()
    assert manager.state == "invalid"
    for _ in range(3):
        with pytest.raises(CredentialsError) as again:
            await manager.get_token()
        assert again.value is first.value
    with pytest.raises(CredentialsError):
        await manager.force_refresh("stale-access")
    assert fake.auth.refresh_calls == 1
    assert [type(e) for e in events] == [TokenRefreshFailed]
    assert isinstance(events[0], TokenRefreshFailed) and events[0].reason == "invalid_grant"
    assert account.refresh_token not in str(first.value)


@pytest.mark.asyncio
async def test_invalid_grant_keeps_a_still_valid_access_token(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    current = account.issue_access_token()
    fake.auth.refresh_failure = "invalid_grant"
    manager, _ = make(fake, session, social(account, access=current, expires_in=300))
    for _ in range(3):
        assert (await manager.get_token()).access_token == current
    assert manager.state == "invalid" and fake.auth.refresh_calls == 1


@pytest.mark.asyncio
async def test_update_credential_clears_invalid(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account()
    manager, _ = make(fake, session, social(account, access=None))
    fake.auth.refresh_failure = "invalid_grant"
    with pytest.raises(CredentialsError):
        await manager.get_token()
    fake.auth.refresh_failure = None
    manager.update_credential(social(account, access=None))
    assert manager.state == "ready"
    assert valid_for_fake(fake, await manager.get_token())


@pytest.mark.asyncio
async def test_invalid_grant_adopts_a_newer_login_from_the_store(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    """kiro-cli logged in again behind our back: the store holds a newer refresh token."""
    account = fake.add_account()
    stale = Credential(auth_kind="social", refresh_token="rt-" + "x" * 100, access_token=None)
    store = MemoryStore(social(account, access=None))
    manager, _ = make(fake, session, stale, store=store)
    fresh = await manager.get_token()
    assert valid_for_fake(fake, fresh)
    assert fake.auth.refresh_calls == 2 and manager.state == "ok"
    assert store.saved[-1].refresh_token == account.refresh_token


@pytest.mark.asyncio
async def test_refresh_endpoint_down_retries_then_fails(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    fake.auth.refresh_failure = "down"
    manager, events = make(fake, session, social(account))
    with pytest.raises(UpstreamError, match=r"unreachable.*HTTP 503"):
        await manager.get_token()
    assert fake.auth.refresh_calls == 3  # one try, two retries
    assert manager.state == "ready"  # not invalid: the next call tries again
    fake.auth.refresh_failure = None
    assert valid_for_fake(fake, await manager.get_token())
    assert isinstance(events[0], TokenRefreshFailed) and events[0].reason == "unreachable"


@pytest.mark.asyncio
async def test_refresh_endpoint_down_keeps_a_valid_token(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    current = account.issue_access_token()
    fake.auth.refresh_failure = "down"
    manager, _ = make(fake, session, social(account, access=current, expires_in=300))
    assert (await manager.get_token()).access_token == current
    assert fake.auth.refresh_calls == 3
    assert (await manager.get_token()).access_token == current  # cooling down: no new round of retries
    assert fake.auth.refresh_calls == 3
    with pytest.raises(UpstreamError, match="unreachable"):
        await manager.force_refresh(current)  # Kiro said the token is bad: degrading cannot help


@pytest.mark.asyncio
async def test_refresh_network_error_and_timeout(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account()
    refused, _ = make(fake, session, social(account), auth_url=closed_port_url())
    with pytest.raises(UpstreamError, match="unreachable"):
        await refused.get_token()

    fake.auth.refresh_delay = 0.3
    slow, _ = make(fake, session, social(account), refresh_timeout=0.02)
    with pytest.raises(UpstreamError, match=r"unreachable \(no answer within 0.02 s\)"):
        await slow.get_token()


@pytest.mark.asyncio
async def test_api_keys_are_never_refreshed(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    key = Credential(auth_kind="api_key", access_token="ksk_" + "k" * 40)
    manager, _ = make(fake, session, key)
    assert manager.state == "ok"
    assert await manager.get_token() is key
    with pytest.raises(CredentialsError, match="API key"):
        await manager.force_refresh(key.access_token or "")
    assert fake.auth.refresh_calls == 0 and fake.auth.oidc_calls == 0


@pytest.mark.asyncio
async def test_missing_and_truncated_refresh_tokens(
    fake: FakeKiro, session: aiohttp.ClientSession, expected_log: ExpectLog
) -> None:
    expected_log(r"^The Kiro login has no refresh token", logger="kiro_tray")
    expected_log(r"^The refresh token looks truncated", logger="kiro_tray")
    missing, _ = make(fake, session, Credential(auth_kind="social"))
    assert missing.state == "missing"
    with pytest.raises(CredentialsError, match="no refresh token"):
        await missing.get_token()
    truncated, _ = make(fake, session, Credential(auth_kind="social", refresh_token="rt-abc...xyz"))
    with pytest.raises(CredentialsError, match="truncated"):
        await truncated.get_token()
    assert fake.auth.refresh_calls == 0


@pytest.mark.asyncio
async def test_no_secret_in_logs_reprs_or_messages(
    fake: FakeKiro, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = fake.add_account()
    original = account.refresh_token
    manager, events = make(fake, session, social(account))
    fresh = await manager.get_token()
    fake.auth.refresh_failure = "invalid_grant"
    with pytest.raises(CredentialsError) as failure:
        await manager.force_refresh(fresh.access_token or "")
    secrets = [original, account.refresh_token, fresh.access_token or "", "stale-access"]
    texts = [caplog.text, repr(manager), repr(manager.credential), str(failure.value), repr(events)]
    assert caplog.records  # something was logged
    for secret in secrets:
        for text in texts:
            assert secret not in text
    assert manager.machine_id not in secrets and len(manager.machine_id) == 64
