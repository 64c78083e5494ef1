"""Faults a new user hit, each fixed with the reshape: through the SDKs against the fake Kiro."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from ..fake_kiro.replies import error_reply, text_reply, throttle_reply
from ..harness import ALLOW_PORT_BUSY, Gateway, start_gateway, stop_gateway

MODEL = "claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]


def metrics(gw: Gateway) -> dict[str, object]:
    request = urllib.request.Request(gw.url + "/metrics", headers={"Authorization": f"Bearer {gw.key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_request_that_runs_out_of_retries_records_them(gateway: Gateway) -> None:
    before = metrics(gateway)["retries"]
    gateway.enqueue(throttle_reply(), throttle_reply(), throttle_reply())  # MAX_RETRIES=2: three attempts
    with pytest.raises(openai.RateLimitError):
        gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    record = list(gateway.service.store)[-1]
    assert record.status == 429 and record.retries == 2
    assert metrics(gateway)["retries"] == before + 2  # type: ignore[operator]


def test_used_up_quota_says_do_not_retry_and_clears_after_a_success(gateway: Gateway) -> None:
    seen: list[str] = []
    restored: list[str] = []
    gateway.service.accounts.quota_exhausted.connect(lambda e: seen.append(e.message))
    gateway.service.accounts.quota_restored.connect(lambda e: restored.append(e.account))
    assert gateway.account is not None
    gateway.account.quota_exhausted = True
    with httpx.Client() as http:
        answer = http.post(
            gateway.url + "/v1/messages",
            headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 10, "messages": HELLO},
        )
    assert answer.status_code == 429
    assert answer.headers["x-should-retry"] == "false"
    assert len(seen) == 1 and restored == []
    gateway.account.quota_exhausted = False
    gateway.enqueue(text_reply("back"))
    gateway.anthropic().messages.create(model=MODEL, max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert restored == [gateway.service.accounts.account_for(None).name]


def test_throttling_keeps_retry_after(gateway: Gateway) -> None:
    gateway.enqueue(throttle_reply(), throttle_reply(), throttle_reply())
    with httpx.Client() as http:
        answer = http.post(
            gateway.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {gateway.key}"},
            json={"model": MODEL, "messages": HELLO},
        )
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert "x-should-retry" not in answer.headers


def test_a_tenants_quota_never_marks_the_app(gateway: Gateway) -> None:
    seen: list[str] = []
    gateway.service.accounts.quota_exhausted.connect(lambda e: seen.append(e.message))
    tenant = gateway.thread.call(gateway.fake.add_account)
    tenant.quota_exhausted = True
    client = gateway.openai(api_key=f"{gateway.key}:{tenant.refresh_token}")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert seen == []


def test_context_overflow_reads_like_anthropic_and_keeps_openai_code(gateway: Gateway) -> None:
    gateway.enqueue(error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        gateway.anthropic().messages.create(model=MODEL, max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    tokens, maximum = (int(n) for n in message.split(": ", 1)[1].split(" maximum")[0].split(" tokens > "))
    assert message.startswith("prompt is too long: ") and tokens > maximum == 200_000
    gateway.enqueue(error_reply(400, "Input is too long.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD"))
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.code == "context_length_exceeded"


@pytest.mark.gateway_settings(payload_budget_bytes=2_000, trim_history=False)
def test_an_oversized_body_is_too_long_in_tokens_too(gateway: Gateway) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        gateway.anthropic().messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "word " * 2_000}]
        )
    assert caught.value.body["error"]["message"].startswith("prompt is too long: ")  # type: ignore[index]


def test_models_list_each_model_once(gateway: Gateway) -> None:
    ids = [m.id for m in gateway.openai().models.list()]
    assert len(ids) == len(set(ids))
    # The fake lists Kiro's dotted ids ("claude-sonnet-4.5"): the same models as our dashed seed ids.
    assert "claude-sonnet-4-5" in ids and "claude-sonnet-4.5" not in ids
    anthropic_ids = [m.id for m in gateway.anthropic().models.list()]
    assert anthropic_ids == ids


def test_one_access_line_per_request_and_refusals_summarised(gateway: Gateway) -> None:
    gateway.enqueue(text_reply("hi"))
    gateway.openai().chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    request_id = list(gateway.service.store)[-1].request_id
    lines = [r.message for r in gateway.logs.ring.lines if r.logger == "kiro_tray.access"]
    mine = [line for line in lines if request_id in line]
    assert len(mine) == 1
    assert "POST /v1/chat/completions" in mine[0] and "status=200" in mine[0] and f"model={MODEL}" in mine[0]
    bad = gateway.openai(api_key="wrong")
    for _ in range(5):
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    refused = [r.message for r in gateway.logs.ring.lines if r.message.startswith("refused ")]
    assert len(refused) == 1 and "wrong" not in refused[0]


@ALLOW_PORT_BUSY
def test_applying_a_new_port_after_a_busy_one_starts_the_server(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        gw = start_gateway(tmp_path, port=blocker.getsockname()[1])
        try:
            assert gw.service.state == "failed"
            gw.restart_with(port=0)
            assert gw.service.state == "running" and gw.service.port != blocker.getsockname()[1]
            gw.enqueue(text_reply("up"))
            answer = gw.openai().chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
            assert answer.choices[0].message.content == "up"
        finally:
            stop_gateway(gw)


def test_a_stopped_gateway_still_knows_its_credentials(gateway: Gateway) -> None:
    gateway.run(gateway.service.stop())
    assert gateway.service.accounts.state() == "ready" or gateway.service.accounts.state() == "ok"
    assert gateway.service.accounts.info().where == "REFRESH_TOKEN setting"
    gateway.run(gateway.service.start())


def test_info_routes_leave_no_record_and_metrics_label_routes(gateway: Gateway) -> None:
    before = len(gateway.service.store)
    with httpx.Client() as http:
        http.get(gateway.url + "/health")
        http.get(gateway.url + "/v1/no-such-thing-" + "x" * 20, headers={"x-api-key": gateway.key})
    assert len(gateway.service.store) == before
    assert all("no-such-thing" not in k for k in metrics(gateway)["requests_by_endpoint"])  # type: ignore[union-attr]


def test_a_truncated_tenant_token_is_refused_like_any_source(gateway: Gateway) -> None:
    client = gateway.openai(api_key=f"{gateway.key}:rt-abc...xyz")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert "truncated" in str(caught.value)
    assert gateway.service.accounts.tenant_count == 0


def test_each_account_has_its_own_model_catalogue_and_a_reset_forgets_it(gateway: Gateway) -> None:
    def extra_model(model_id: str) -> dict[str, object]:
        return {"modelId": model_id, "modelName": model_id, "tokenLimits": {"maxInputTokens": 100_000}}

    gateway.thread.call(gateway.fake.models.append, extra_model("kiro-first-extra"))
    assert "kiro-first-extra" in [m.id for m in gateway.openai().models.list()]
    tenant = gateway.thread.call(gateway.fake.add_account)
    gateway.thread.call(gateway.fake.models.append, extra_model("kiro-second-extra"))
    own = gateway.openai(api_key=f"{gateway.key}:{tenant.refresh_token}").models.list()
    assert "kiro-second-extra" in [m.id for m in own]  # the tenant's catalogue, not the cached one
    assert "kiro-second-extra" not in [m.id for m in gateway.openai().models.list()]  # still cached
    gateway.run(gateway.service.accounts.reset())
    assert "kiro-second-extra" in [m.id for m in gateway.openai().models.list()]
