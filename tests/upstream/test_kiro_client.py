"""KiroClient against the fake Kiro (a real aiohttp server on port 0)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from kiro_tray.protocol.errors import (
    AccountSuspended,
    ContextTooLong,
    CredentialsError,
    GatewayError,
    ImproperlyFormed,
    InvalidModel,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from kiro_tray.protocol.kiro_events import KiroEvent, TextEvent
from kiro_tray.upstream.credentials import Credential
from kiro_tray.upstream.kiro_client import ClientConfig, ClientEvent, KiroClient, UpstreamRetried
from kiro_tray.upstream.token_manager import TokenManager
from tests.fake_kiro.auth import Account
from tests.fake_kiro.replies import (
    Delay,
    Disconnect,
    Reply,
    Stall,
    Text,
    error_reply,
    paced_text_reply,
    text_reply,
    throttle_reply,
)
from tests.fake_kiro.server import FakeKiro
from tests.harness import ALLOW_RETRIES

pytestmark = ALLOW_RETRIES  # retrying is what the client is tested for, throughout

MODEL = "claude-sonnet-4.5"
PAYLOAD: dict[str, Any] = {
    "conversationState": {
        "chatTriggerType": "MANUAL",
        "conversationId": "3f1c2b9e-0000-4000-8000-000000000001",
        "currentMessage": {"userInputMessage": {"content": "hi", "modelId": MODEL, "origin": "AI_EDITOR"}},
    }
}
OTHER_ARN = "arn:aws:codewhisperer:us-east-1:111111111111:profile/SOMEONEELSE"


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
    fake: FakeKiro, session: aiohttp.ClientSession, account: Account, *, profile_arn: str | None = None
) -> TokenManager:
    """A manager whose token the fake accepts, believed valid for an hour."""
    credential = Credential(
        auth_kind=account.kind,
        refresh_token=account.refresh_token,
        access_token=account.issue_access_token(),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        profile_arn=profile_arn or account.profile_arn,
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


async def read_all(client: KiroClient, tokens: TokenManager, **kwargs: Any) -> list[KiroEvent]:
    upstream = await client.open_stream(
        PAYLOAD, tokens, model=kwargs.pop("model", MODEL), **{"stream": True, **kwargs}
    )
    async with upstream:
        return [event async for batch in upstream for event in batch]


def texts(events: list[KiroEvent]) -> str:
    return "".join(e.content for e in events if isinstance(e, TextEvent))


# ---- success, headers, profileArn -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_returns_first_chunk_and_releases_the_connection(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(text_reply("Hello there", chunks=2))
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        assert upstream.retries == 0
        body = [event async for batch in upstream for event in batch]
    assert texts(body) == "Hello there"
    assert busy_connections(session) == 0 and events == []


@pytest.mark.asyncio
async def test_ide_headers_and_unique_invocation_ids(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    await read_all(client, tokens)
    await read_all(client, tokens)
    first, second = fake.requests
    headers = CIMultiDict(first.headers)
    access = tokens.credential.access_token
    assert access is not None
    assert headers["Authorization"] == f"Bearer {access}"
    assert headers["Content-Type"] == "application/json"
    ide = f"KiroIDE-0.11.107-{tokens.machine_id}"
    assert re.fullmatch(r"[0-9a-f]{64}", tokens.machine_id)
    assert headers["user-agent"].startswith("aws-sdk-js/1.0.34 ua/2.1 os/")
    assert headers["user-agent"].endswith(f"api/codewhispererstreaming#1.0.34 m/E {ide}")
    assert headers["x-amz-user-agent"] == f"aws-sdk-js/1.0.34 {ide}"
    assert headers["x-amzn-codewhisperer-optout"] == "true"
    assert headers["x-amzn-kiro-agent-mode"] == "vibe"
    assert headers["amz-sdk-request"] == "attempt=1; max=4"
    assert "tokentype" not in headers and headers.get("Connection", "").lower() != "close"
    ids = {uuid.UUID(r.headers["amz-sdk-invocation-id"]).version for r in fake.requests}
    assert ids == {4}
    assert first.headers["amz-sdk-invocation-id"] != second.headers["amz-sdk-invocation-id"]
    assert first.headers["user-agent"] == second.headers["user-agent"]  # stable machine id
    assert all(access not in value for key, value in headers.items() if key != "Authorization")


@pytest.mark.asyncio
async def test_api_keys_send_tokentype(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    key = fake.add_account().issue_access_token()  # the fake accepts it as a bearer token
    tokens = TokenManager(
        Credential(auth_kind="api_key", access_token=key),
        store=None,
        session=session,
        auth_base_url=fake.url,
        oidc_base_url=fake.url,
    )
    client, _ = client_for(session, fake.url)
    await read_all(client, tokens)
    request = fake.requests[0]
    assert CIMultiDict(request.headers)["tokentype"] == "API_KEY" and "profileArn" not in request.body


@pytest.mark.asyncio
async def test_profile_arn_is_sent_for_social_logins_only(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, _ = client_for(session, fake.url)
    social = fake.add_account()
    await read_all(client, tokens_for(fake, session, social))
    idc = fake.add_account(kind="idc")
    await read_all(client, tokens_for(fake, session, idc))
    placeholder = fake.add_account(
        profile_arn="arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
    )
    await read_all(client, tokens_for(fake, session, placeholder))
    sent = [r.body.get("profileArn") for r in fake.requests]
    assert sent == [social.profile_arn, None, None]
    assert all(r.body["conversationState"] == PAYLOAD["conversationState"] for r in fake.requests)


@pytest.mark.asyncio
async def test_not_authorized_is_retried_once_without_the_arn(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    account = fake.add_account()
    tokens = tokens_for(fake, session, account, profile_arn=OTHER_ARN)
    client, events = client_for(session, fake.url)
    body = await read_all(client, tokens)
    assert texts(body) == "You said: hi"
    assert [r.body.get("profileArn") for r in fake.requests] == [OTHER_ARN, None]
    assert [r.status for r in fake.requests] == [403, 200]
    assert [e.cause for e in events] == ["not authorized"]


# ---- retries --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_5xx_and_throttling_are_retried_before_the_first_byte(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(error_reply(500, "Internal"), error_reply(503, "Busy"), throttle_reply(), text_reply("ok"))
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        assert upstream.retries == 3
    assert [e.cause for e in events] == ["HTTP 500", "HTTP 503", "HTTP 429"]
    assert [e.attempt for e in events] == [1, 2, 3]
    assert [r.headers["amz-sdk-request"] for r in fake.requests] == [
        f"attempt={n}; max=4" for n in (1, 2, 3, 4)
    ]
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_retry_after_is_honoured(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    throttled = throttle_reply()
    throttled.headers["Retry-After"] = "0.05"
    fake.enqueue(throttled)
    await read_all(client, tokens)
    assert len(events) == 1 and events[0].delay >= 0.05


@pytest.mark.asyncio
async def test_retry_after_beyond_the_cap_goes_back_to_the_client(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, events = client_for(session, fake.url, backoff_cap=1.0)
    tokens = tokens_for(fake, session, fake.add_account())
    throttled = throttle_reply()
    throttled.headers["Retry-After"] = "120"
    fake.enqueue(throttled)
    with pytest.raises(RateLimited, match="throttling") as raised:
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert raised.value.retry_after == 120 and raised.value.headers() == {"Retry-After": "120"}
    assert events == [] and len(fake.requests) == 1


@pytest.mark.asyncio
async def test_a_connection_cut_before_the_first_byte_is_retried(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Disconnect()]), text_reply("second time lucky"))
    assert texts(await read_all(client, tokens)) == "second time lucky"
    assert len(events) == 1 and busy_connections(session) == 0


@pytest.mark.asyncio
async def test_connection_refused_is_retried_then_named(
    session: aiohttp.ClientSession, fake: FakeKiro
) -> None:
    client, events = client_for(session, closed_port_url(), max_retries=2)
    tokens = tokens_for(fake, session, fake.add_account())
    with pytest.raises(UpstreamError, match=r"Cannot reach Kiro: connection refused .* \(after 3 attempts\)"):
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert [e.attempt for e in events] == [1, 2]
    assert all("connection refused" in e.cause for e in events)


# ---- bearer-invalid answers and the forced refresh ---------------------------------------------------


@pytest.mark.asyncio
async def test_expired_access_token_gets_one_forced_refresh(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
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
    assert all(texts(body) == "You said: hi" for body in bodies)
    assert [r.status for r in fake.requests].count(403) == 20
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
    assert fake.auth.refresh_calls == 1 and len(fake.requests) == 2  # once per request, no loop
    assert busy_connections(session) == 0


# ---- final failures map to the error tree ------------------------------------------------------------

ERROR_CASES = [
    (
        error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ContextTooLong,
        "context window",
    ),
    (error_reply(400, "Input is too long.", None), ContextTooLong, "start a new one or compact"),
    (
        error_reply(400, "Improperly formed request.", "TOOL_CONFIG_MISSING"),
        ImproperlyFormed,
        "TOOL_CONFIG_MISSING",
    ),
    (
        error_reply(400, "Invalid model ID or insufficient subscription level to use it"),
        InvalidModel,
        "claude-sonnet-4.5",
    ),
    (error_reply(400, "Something else is wrong."), InvalidRequest, "Something else is wrong"),
    (
        error_reply(402, "Limit reached", "MONTHLY_REQUEST_COUNT"),
        QuotaExhausted,
        "monthly Kiro quota is used up",
    ),
    (
        error_reply(403, "Your User ID temporarily is suspended.", "TEMPORARILY_SUSPENDED"),
        AccountSuspended,
        "suspended",
    ),
    (error_reply(403, "Forbidden for another reason."), CredentialsError, "another reason"),
    (error_reply(404, "No such thing."), UpstreamError, "HTTP 404"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("reply", "error", "words"), ERROR_CASES)
async def test_final_errors_are_not_retried_and_are_mapped(
    fake: FakeKiro, session: aiohttp.ClientSession, reply: Reply, error: type[GatewayError], words: str
) -> None:
    client, events = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(reply)
    with pytest.raises(error, match=re.escape(words)) as raised:
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert type(raised.value) is error
    assert len(fake.requests) == 1 and events == [] and busy_connections(session) == 0


RETRIED_CASES = [
    (throttle_reply(), RateLimited, "Kiro is throttling requests: Too many requests"),
    (error_reply(500, "Internal failure"), UpstreamError, "Kiro failed (HTTP 500): Internal failure"),
    (error_reply(503, "Service Unavailable"), UpstreamOverloaded, "overloaded"),
    (error_reply(408, "Request Timeout"), UpstreamTimeout, "HTTP 408"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("reply", "error", "words"), RETRIED_CASES)
async def test_transient_errors_are_mapped_after_the_retries(
    fake: FakeKiro, session: aiohttp.ClientSession, reply: Reply, error: type[GatewayError], words: str
) -> None:
    client, events = client_for(session, fake.url, max_retries=2)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(reply, reply, reply)
    with pytest.raises(error, match=re.escape(words) + r".*\(after 3 attempts\)") as raised:
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    assert type(raised.value) is error
    assert len(fake.requests) == 3 and len(events) == 2


@pytest.mark.asyncio
async def test_the_fakes_own_account_flags(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url)
    suspended = fake.add_account(suspended=True)
    with pytest.raises(AccountSuspended, match="TEMPORARILY_SUSPENDED"):
        await client.open_stream(PAYLOAD, tokens_for(fake, session, suspended), model=MODEL, stream=True)
    broke = fake.add_account(quota_exhausted=True)
    with pytest.raises(QuotaExhausted, match="monthly Kiro quota"):
        await client.open_stream(PAYLOAD, tokens_for(fake, session, broke), model=MODEL, stream=True)
    bad_model = {"conversationState": {**PAYLOAD["conversationState"]}}
    bad_model["conversationState"]["currentMessage"] = {
        "userInputMessage": {"content": "hi", "modelId": "gpt-17", "origin": "AI_EDITOR"}
    }
    with pytest.raises(InvalidModel, match="gpt-17"):
        await client.open_stream(
            bad_model, tokens_for(fake, session, fake.add_account()), model="gpt-17", stream=True
        )
    assert fake.auth.refresh_calls == 0  # suspension and quota 403/402s never trigger a refresh


# ---- timeouts -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_first_token_timeout_cancels_and_retries(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    # 0.4 s: the prompt answer must beat it even on a loaded machine; the late one (1 s) must not
    client, events = client_for(session, fake.url, first_token_timeout=0.4)
    tokens = tokens_for(fake, session, fake.add_account())
    # headers sent but no body (Stall), then no headers at all (Delay), then a prompt answer
    fake.enqueue(Reply([Stall()]), Reply([Delay(1.0), Text("too late")]), text_reply("prompt"))
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        assert upstream.retries == 2
        body = [event async for batch in upstream for event in batch]
    assert texts(body) == "prompt"
    assert [e.cause for e in events] == ["first-token timeout"] * 2
    await asyncio.wait_for(fake.wait_idle(), 2)
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_first_token_timeout_after_the_retries(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url, first_token_timeout=0.05, max_retries=1)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Stall()]), Reply([Stall()]))
    with pytest.raises(UpstreamTimeout, match=r"within the first-token timeout \(0.05 s\).*after 2 attempts"):
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    await asyncio.wait_for(fake.wait_idle(), 2)
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_opus_models_get_longer_timeouts(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, events = client_for(session, fake.url, first_token_timeout=0.1, slow_model_multiplier=10.0)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Delay(0.3), Text("slow but sure")]))
    body = await read_all(client, tokens, model="claude-opus-4.5")
    assert texts(body) == "slow but sure" and events == []


@pytest.mark.asyncio
async def test_read_timeout_between_chunks(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url, stream_read_timeout=0.5)  # the 0.02 s gap stays far below
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Text("first"), Delay(0.02), Text("second"), Stall()]))
    received: list[KiroEvent] = []
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        with pytest.raises(UpstreamTimeout, match=r"stream read timeout \(0.5 s\)"):
            async for batch in upstream:
                received.extend(batch)
    assert texts(received) == "firstsecond"
    await asyncio.wait_for(fake.wait_idle(), 2)
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_non_streamed_requests_have_a_total_deadline(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    # 1 s: a prompt answer fits even on a loaded machine; 4 s of short gaps does not
    client, _ = client_for(session, fake.url, non_stream_timeout=1.0, stream_read_timeout=1.0)
    tokens = tokens_for(fake, session, fake.add_account())
    assert texts(await read_all(client, tokens, stream=False)) == "You said: hi"
    fake.enqueue(paced_text_reply(40, 0.1))
    with pytest.raises(UpstreamTimeout, match=r"non-streaming timeout \(1 s\)"):
        await read_all(client, tokens, stream=False)
    await asyncio.wait_for(fake.wait_idle(), 2)
    assert busy_connections(session) == 0


# ---- the stream after the first byte ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_abandoned_stream_closes_the_upstream_connection(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Text("a"), Delay(0.02), Text("b"), Stall()]))
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    async with upstream:
        async for _ in upstream:
            break  # the caller walks away mid-stream
    assert busy_connections(session) == 0
    await asyncio.wait_for(fake.wait_idle(), 2)
    assert fake.open_streams == 0


@pytest.mark.asyncio
async def test_a_cut_mid_stream_is_an_upstream_error(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    fake.enqueue(Reply([Text("a"), Delay(0.02), Disconnect()]))
    upstream = await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    with pytest.raises(UpstreamError, match="broke mid-stream"):
        async with upstream:
            async for _ in upstream:
                pass
    assert busy_connections(session) == 0


@pytest.mark.asyncio
async def test_completed_streams_reuse_one_connection(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account())
    for _ in range(3):
        await read_all(client, tokens)
    assert fake.total_connections == 1 and busy_connections(session) == 0


# ---- ListAvailableModels and getUsageLimits -----------------------------------------------------------


@pytest.mark.asyncio
async def test_list_models_follows_next_token(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    fake.models_page_size = 2
    client, _ = client_for(session, fake.url)
    account = fake.add_account()
    models = await client.list_models(tokens_for(fake, session, account))
    assert [m["modelId"] for m in models] == [m["modelId"] for m in fake.models]
    assert len(fake.requests) == -(-len(fake.models) // 2)  # one request per page of two
    assert all(r.query["origin"] == "AI_EDITOR" for r in fake.requests)
    assert all(r.query["profileArn"] == account.profile_arn for r in fake.requests)


@pytest.mark.asyncio
async def test_list_models_retries_without_an_unauthorized_arn(
    fake: FakeKiro, session: aiohttp.ClientSession
) -> None:
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, fake.add_account(), profile_arn=OTHER_ARN)
    models = await client.list_models(tokens)
    assert len(models) == len(fake.models)
    assert [r.query.get("profileArn") for r in fake.requests] == [OTHER_ARN, None]


@pytest.mark.asyncio
async def test_usage_limits(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    client, _ = client_for(session, fake.url)
    idc = fake.add_account(kind="idc")
    assert await client.usage_limits(tokens_for(fake, session, idc)) == fake.usage_of(idc)
    query = fake.requests[0].query
    assert query == {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST", "isEmailRequired": "true"}


@pytest.mark.asyncio
async def test_json_calls_refresh_a_rejected_token(fake: FakeKiro, session: aiohttp.ClientSession) -> None:
    account = fake.add_account()
    client, _ = client_for(session, fake.url)
    tokens = tokens_for(fake, session, account)
    account.expire_access_tokens()
    assert await client.usage_limits(tokens) == fake.usage_of(account)
    assert fake.auth.refresh_calls == 1 and [r.status for r in fake.requests] == [403, 200]


# ---- secrets ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_secret_in_logs_or_errors(
    fake: FakeKiro, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = fake.add_account()
    client, _ = client_for(session, fake.url, max_retries=1)
    tokens = tokens_for(fake, session, account)
    stale = tokens.credential.access_token
    account.expire_access_tokens()
    fake.enqueue(error_reply(500, "boom"), error_reply(500, "boom"))
    with pytest.raises(UpstreamError) as raised:
        await client.open_stream(PAYLOAD, tokens, model=MODEL, stream=True)
    secrets = [stale, tokens.credential.access_token, tokens.credential.refresh_token, account.refresh_token]
    assert caplog.records
    for secret in secrets:
        assert secret and secret not in caplog.text and secret not in str(raised.value)
