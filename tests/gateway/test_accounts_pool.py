"""Several Kiro accounts: failover for every account signal, strategies, all-unavailable answers, one probe,
persisted state, written-back tokens, ``/v1/usage``, ``/health`` and the Prometheus series.

The pool is ``work`` then ``home`` (``KIRO_ACCOUNTS_FILE``); each fake account is scripted with Kiro's own
answers (tests/fake_kiro).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from kiro_tray.gateway.accounts import AccountsRegistry
from kiro_tray.store import RequestRecord
from kiro_tray.upstream.secret_store import SecretStore

from ..fake_kiro.auth import Account
from ..fake_kiro.replies import error_reply
from ..fake_kiro.server import usage_answer
from ..harness import ALLOW_REFRESH_FAILURES, Gateway

MODEL = "claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "Hello"}]
POOL = pytest.mark.gateway_settings(pool=("work", "home"))


def ask(gw: Gateway, api: str, stream: bool) -> str:
    """One request with the official SDK; the answer's text."""
    if api == "openai":
        client = gw.openai()
        if stream:
            chunks = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)  # type: ignore[arg-type]
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reply = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""
    messages = gw.anthropic().messages
    if stream:
        with messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as events:  # type: ignore[arg-type]
            return "".join(events.text_stream)
    reply = messages.create(model=MODEL, max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    return "".join(block.text for block in reply.content if block.type == "text")


def last_record(gw: Gateway) -> RequestRecord:
    """The latest request's record once finished (a stream's ends just after its last byte is sent)."""
    record = list(gw.service.store)[-1]
    done = threading.Event()

    def check(_: RequestRecord) -> None:
        if record.finished:
            done.set()

    gw.thread.call(gw.service.store.updated.connect, check)
    try:
        assert record.finished or done.wait(10)
    finally:
        gw.thread.call(gw.service.store.updated.disconnect, check)
    return record


def get(gw: Gateway, path: str) -> httpx.Response:
    return httpx.get(gw.url + path, headers={"Authorization": f"Bearer {gw.key}"}, timeout=10)


def set_flag(gw: Gateway, account: Account, **flags: Any) -> None:
    def apply() -> None:
        for name, value in flags.items():
            setattr(account, name, value)

    gw.thread.call(apply)


def expire_login(account: Account) -> None:
    account.expire_login()


#: Each account signal, as the fake scripts it, and the signal the record's hop must name.
SIGNALS: dict[str, tuple[Callable[[Account], None], str]] = {
    "quota": (lambda a: setattr(a, "quota_exhausted", True), "quota_exhausted"),
    "throttled": (lambda a: setattr(a, "throttled", True), "throttled"),
    "suspicious": (lambda a: setattr(a, "suspicious", True), "suspicious_activity"),
    "suspended": (lambda a: setattr(a, "suspended", True), "suspended"),
    "locked": (lambda a: setattr(a, "locked", True), "suspended"),
    "login_expired": (expire_login, "login_revoked"),
}
MODES = [(api, stream) for api in ("openai", "anthropic") for stream in (False, True)]


@ALLOW_REFRESH_FAILURES
@POOL
@pytest.mark.parametrize("signal", list(SIGNALS))
@pytest.mark.parametrize(("api", "stream"), MODES)
def test_an_account_fault_moves_the_request_to_the_next_account(
    gateway: Gateway, signal: str, api: str, stream: bool
) -> None:
    work, home = gateway.pool["work"], gateway.pool["home"]
    if signal == "login_expired":
        ask(gateway, api, stream)  # a token is in use, then the login dies behind it
        gateway.thread.call(lambda: work.expire_login())
    else:
        gateway.thread.call(SIGNALS[signal][0], work)
    before = home.generate_calls
    assert ask(gateway, api, stream).startswith("You said")
    record = last_record(gateway)
    assert record.status == 200 and record.account == "home"
    assert record.hops == (f"work: {SIGNALS[signal][1]}",)
    assert home.generate_calls == before + 1
    calls = work.generate_calls
    assert ask(gateway, api, stream)  # the failed account is left alone now
    assert work.generate_calls == calls and last_record(gateway).hops == ()


@POOL
@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (error_reply(400, "Improperly formed request.", None), 400),
        (error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"), 400),
        (error_reply(400, "Invalid model ID or insufficient subscription level to use it", None), 404),
    ],
)
def test_request_faults_never_fail_over(gateway: Gateway, reply: Any, status: int) -> None:
    gateway.enqueue(reply)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gateway, "openai", False)
    assert caught.value.status_code == status
    assert last_record(gateway).hops == () and gateway.pool["home"].generate_calls == 0


@POOL
def test_kiro_wide_capacity_is_not_an_account_fault(gateway: Gateway) -> None:
    gateway.thread.call(setattr, gateway.fake, "capacity_exhausted", True)
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(gateway, "anthropic", False)
    assert caught.value.status_code == 529
    assert gateway.pool["home"].generate_calls == 0 and gateway.pool["work"].generate_calls == 1
    assert gateway.service.accounts.summary() == {"available": 2}


@POOL
def test_all_out_of_quota_or_cooling_is_429_with_the_earliest_recovery(gateway: Gateway) -> None:
    set_flag(gateway, gateway.pool["work"], quota_exhausted=True)
    set_flag(gateway, gateway.pool["home"], throttled=True, retry_after=120)
    answer = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": MODEL, "messages": HELLO},
        timeout=10,
    )
    assert answer.status_code == 429
    assert 100 <= int(answer.headers["Retry-After"]) <= 120
    message = answer.json()["error"]["message"]
    assert "work: quota_exhausted until" in message and "home: cooling until" in message


@POOL
def test_all_suspended_is_403_naming_each_state(gateway: Gateway) -> None:
    set_flag(gateway, gateway.pool["work"], suspended=True)
    set_flag(gateway, gateway.pool["home"], locked=True)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(gateway, "openai", True)
    assert "work: suspended" in caught.value.message and "home: suspended" in caught.value.message
    with pytest.raises(openai.PermissionDeniedError):  # and no account is tried again
        ask(gateway, "openai", False)
    assert [r.path for r in gateway.fake.requests] == ["/generateAssistantResponse"] * 2


@POOL
def test_twenty_concurrent_requests_probe_a_failing_account_once(gateway: Gateway) -> None:
    set_flag(gateway, gateway.pool["work"], quota_exhausted=True)
    client = gateway.async_openai()

    async def burst() -> list[str]:
        async def one() -> str:
            reply = await client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
            return reply.choices[0].message.content or ""

        try:
            return await asyncio.gather(*(one() for _ in range(20)))
        finally:
            await client.close()

    answers = asyncio.run(burst())
    assert all(a.startswith("You said") for a in answers)
    assert gateway.pool["work"].generate_calls == 1
    assert gateway.pool["home"].generate_calls == 20


@POOL
def test_sticky_keeps_one_account(gateway: Gateway) -> None:
    for _ in range(3):
        ask(gateway, "openai", False)
    assert (gateway.pool["work"].generate_calls, gateway.pool["home"].generate_calls) == (3, 0)


@pytest.mark.gateway_settings(pool=("work", "home"), account_strategy="round-robin")
def test_round_robin_alternates(gateway: Gateway) -> None:
    accounts = [ask(gateway, "openai", False) and last_record(gateway).account for _ in range(4)]
    assert accounts == ["work", "home", "work", "home"]


@pytest.mark.gateway_settings(pool=("work", "home"), account_strategy="least-used")
def test_least_used_takes_the_lowest_share_of_its_limit(gateway: Gateway) -> None:
    gateway.pool["work"].usage = usage_answer(400, 500)
    gateway.pool["home"].usage = usage_answer(300, 1000)
    gateway.run(gateway.service.accounts.check())
    ask(gateway, "anthropic", False)
    assert last_record(gateway).account == "home"


@pytest.mark.gateway_settings(pool=("work", "home"), account_pin="home")
def test_a_pinned_account_serves_while_it_can(gateway: Gateway) -> None:
    ask(gateway, "openai", False)
    assert last_record(gateway).account == "home"
    set_flag(gateway, gateway.pool["home"], quota_exhausted=True)
    ask(gateway, "openai", False)
    assert last_record(gateway).account == "work" and last_record(gateway).hops == ("home: quota_exhausted",)


def states_after_a_new_start(gw: Gateway) -> dict[str, str]:
    """The account states a freshly started app reads (a new registry on the same config folder)."""
    gw.run(gw.service.accounts.flush())
    fresh = AccountsRegistry(gw.service.settings, secret_store=SecretStore(gw.home / "config"))
    gw.run(fresh.discover())
    return {row["name"]: row["state"] for row in fresh.rows()}


@POOL
def test_lasting_states_survive_a_restart_and_cooldowns_do_not(gateway: Gateway) -> None:
    set_flag(gateway, gateway.pool["work"], quota_exhausted=True)
    set_flag(gateway, gateway.pool["home"], throttled=True, retry_after=5)
    with pytest.raises(openai.RateLimitError):
        ask(gateway, "openai", False)
    assert gateway.service.accounts.summary() == {"quota_exhausted": 1, "cooling": 1}
    assert states_after_a_new_start(gateway) == {"work": "quota_exhausted", "home": "available"}
    calls = gateway.pool["work"].generate_calls
    set_flag(gateway, gateway.pool["home"], throttled=False)
    gateway.run(gateway.service.accounts.set_enabled("home", True))  # enabling again ends a cooldown
    ask(gateway, "openai", False)
    assert gateway.pool["work"].generate_calls == calls and last_record(gateway).account == "home"
    set_flag(gateway, gateway.pool["work"], quota_exhausted=False)
    gateway.run(gateway.service.accounts.set_enabled("work", True))  # a person re-enables it
    assert states_after_a_new_start(gateway) == {"work": "available", "home": "available"}


@POOL
def test_rotated_tokens_are_written_back_to_the_accounts_file(gateway: Gateway) -> None:
    ask(gateway, "openai", False)
    path = gateway.service.settings.kiro_accounts_file
    assert path is not None
    entries = {e["name"]: e for e in json.loads(path.read_text())}
    assert entries["work"]["refreshToken"] == gateway.pool["work"].refresh_token  # rotated by the refresh
    assert entries["work"]["note"] == "kept" and entries["home"]["note"] == "kept"


@POOL
def test_usage_health_and_prometheus_show_every_account(gateway: Gateway) -> None:
    gateway.pool["work"].usage = usage_answer(312, 1000, plan="KIRO PRO", bonus=50)
    gateway.run(gateway.service.accounts.check())
    ask(gateway, "openai", False)
    usage = get(gateway, "/v1/usage").json()
    assert usage["strategy"] == "sticky" and usage["active"] == "work"
    work = usage["accounts"][0]
    assert (work["name"], work["type"], work["source"], work["state"]) == (
        "work",
        "social",
        "accounts_file",
        "available",
    )
    assert work["plan"] == "KIRO PRO" and work["credits_limit"] == 1000 and work["bonus_credits"] == 50
    assert work["credits_used"] == pytest.approx(312.02)  # the poll, plus the answer's metering
    assert work["requests_today"] == 1 and work["resets_at"].endswith("Z") and work["last_used"]
    assert "refreshToken" not in json.dumps(usage) and gateway.pool["work"].refresh_token not in json.dumps(
        usage
    )
    assert httpx.get(gateway.url + "/v1/usage", timeout=10).status_code == 401
    assert httpx.get(gateway.url + "/health", timeout=10).json()["accounts"] == {"available": 2}
    text = get(gateway, "/metrics?format=prometheus").text
    assert 'kiro_tray_account_up{account="work",state="available"} 1' in text
    assert 'kiro_tray_account_credits_limit{account="work"} 1000' in text
    assert 'kiro_tray_account_requests_total{account="work"} 1' in text
    assert 'kiro_tray_account_failovers_total{account="home"} 0' in text


def test_a_tenant_sees_only_its_own_usage(gateway: Gateway) -> None:
    tenant = gateway.thread.call(gateway.fake.add_account)
    answer = httpx.get(
        gateway.url + "/v1/usage",
        headers={"Authorization": f"Bearer {gateway.key}:{tenant.refresh_token}"},
        timeout=10,
    ).json()
    assert answer["strategy"] == "tenant" and [a["source"] for a in answer["accounts"]] == ["tenant"]


def test_one_account_keeps_todays_behaviour(gateway: Gateway) -> None:
    """No pool: a used-up quota is Kiro's 429 each time, and the account is tried again every request."""
    assert gateway.account is not None
    set_flag(gateway, gateway.account, quota_exhausted=True)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError, match="quota"):
            ask(gateway, "openai", False)
    assert gateway.account.generate_calls == 2
