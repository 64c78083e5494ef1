"""KiroClient against the fake Kiro (a real aiohttp server on port 0)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from kiro_tray.errors import CredentialsError, UpstreamError
from kiro_tray.protocol.kiro_events import KiroEventDecoder, TextEvent
from kiro_tray.upstream.credentials import Credential
from kiro_tray.upstream.kiro_client import ClientConfig, ClientEvent, KiroClient, UpstreamRetried
from kiro_tray.upstream.token_manager import TokenManager
from tests.fake_kiro.auth import Account
from tests.fake_kiro.server import FakeKiro

PAYLOAD: dict[str, Any] = {"conversationState": {"currentMessage": {"userInputMessage": {"content": "hi"}}}}
MODEL = "claude-sonnet-4.5"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeKiro]:
    server = FakeKiro()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def config(url: str, **kwargs: Any) -> ClientConfig:
    defaults: dict[str, Any] = {
        "first_token_timeout": 2.0,
        "stream_read_timeout": 2.0,
        "non_stream_timeout": 5.0,
        "backoff_base": 0.001,
        "backoff_cap": 1.0,
    }
    return ClientConfig(api_base_url=url, **{**defaults, **kwargs})


def client_for(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[KiroClient, list[ClientEvent]]:
    events: list[ClientEvent] = []
    return KiroClient(session, config(url, **kwargs), on_event=events.append), events


def tokens_for(
    fake: FakeKiro, session: aiohttp.ClientSession, account: Account, *, access: str | None = None
) -> TokenManager:
    credential = Credential(
        auth_kind=account.kind,
        refresh_token=account.refresh_token,
        access_token=access or account.issue_access_token(),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        profile_arn=account.profile_arn,
        client_id=account.client_id,
        client_secret=account.client_secret,
    )
    return TokenManager(
        credential,
        store=None,
        session=session,
        auth_base_url=fake.url,
        oidc_base_url=fake.url,
        refresh_backoff=0.001,
    )


def busy_connections(session: aiohttp.ClientSession) -> int:
    connector = session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    return len(connector._acquired)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def read_all(client: KiroClient, tokens: TokenManager, **kwargs: Any) -> bytes:
    upstream = await client.open_stream(PAYLOAD, tokens, model=kwargs.pop("model", MODEL), **{"stream": True, **kwargs})
    async with upstream:
        return upstream.first_chunk + b"".join([chunk async for chunk in upstream])


@pytest.mark.asyncio
async def test_stream_returns_first_chunk_and_releases_the_connection(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    body = await read_all(client, tokens)
    assert KiroEventDecoder().feed(body) == [TextEvent("Hello from the fake Kiro.")]
    assert busy_connections(session) == 0
    assert events == []


@pytest.mark.asyncio
async def test_expired_access_token_gets_one_forced_refresh(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account()
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, account)
    account.expire_access_tokens()  # the manager still believes its token is good for an hour
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        assert upstream.retries == 1
    assert fake.auth.refresh_calls == 1
    assert events == [UpstreamRetried("bearer token invalid", 1, 0.0)]


@pytest.mark.asyncio
async def test_twenty_concurrent_bearer_invalid_answers_cause_one_refresh(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, account)
    account.expire_access_tokens()
    fake.auth.refresh_delay = 0.05
    bodies = await asyncio.gather(*(read_all(client, tokens) for _ in range(20)))
    assert fake.auth.refresh_calls == 1
    assert all(KiroEventDecoder().feed(body) == [TextEvent("Hello from the fake Kiro.")] for body in bodies)
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_bearer_invalid_after_the_refresh_is_a_credentials_error(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, account)
    account.expire_access_tokens()
    fake.auth.issued_ttl = -10  # refreshed tokens are dead on arrival
    with pytest.raises(CredentialsError, match="even after a refresh"):
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert fake.auth.refresh_calls == 1  # once per request, no loop
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_connection_refused_is_retried_then_named(session: aiohttp.ClientSession, fake: FakeKiro) -> None:
    client, events = client_for(session, closed_port_url(), max_retries=2)
    tokens = tokens_for(fake, session, fake.add_account())
    with pytest.raises(UpstreamError, match=r"Cannot reach Kiro: connection refused .* \(after 3 attempts\)"):
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert [e.attempt for e in events] == [1, 2]
    assert all(isinstance(e, UpstreamRetried) and "connection refused" in e.cause for e in events)
