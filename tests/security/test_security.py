"""Security properties, over real HTTP (tests/gateway/test_auth.py has the basics; these extend them).

Loopback bind by default; a Host that is not loopback refused on every route while bound to loopback;
CORS off by default and then only for listed origins; the client key compared in constant time; no secret
in any error body, in ``/health`` or ``/``, or in the log files (the harness scans log lines and request
records after every gateway test, and here it is shown to catch a planted secret); settings, credential
fallback and log files readable by the user only; which routes need the key.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import keyring.backends.fail
import pytest

from kiro_tray.gateway import auth
from kiro_tray.logging_setup import PrivateRotatingFileHandler, setup_logging
from kiro_tray.settings import Settings, write_settings_file
from kiro_tray.upstream.secret_store import SecretStore

from ..fake_kiro.replies import Disconnect, ExceptionFrame, Reply, Text, error_reply, throttle_reply
from ..faults.checks import MODEL, PATHS, Api, call, chat_body, error_message, headers_for
from ..harness import (
    ALLOW_KEY_GENERATED,
    ALLOW_KEYRING_FALLBACK,
    ALLOW_REFRESH_FAILURES,
    ALLOW_RETRIES,
    SECRET_SHAPES,
    TEST_KEY,
    Gateway,
    leaked_secrets,
    start_gateway,
    stop_gateway,
)

APIS: list[Api] = ["openai", "anthropic"]


def secrets_of(gw: Gateway) -> list[str]:
    """Every secret the gateway has seen: the client key, refresh tokens (each rotation), access tokens."""
    found = [gw.service.proxy_api_key]
    for account in gw.fake.auth.accounts.values():
        found.append(account.refresh_token)
        found.extend(account.access_tokens)
    if gw.account is not None:
        found.append(gw.account.refresh_token)
    return [s for s in found if s]


def assert_no_secret(gw: Gateway, text: str) -> None:
    assert not SECRET_SHAPES.search(text), text[:300]
    for secret in secrets_of(gw):
        assert secret not in text


# ---- where it listens -----------------------------------------------------------------------------


def non_loopback_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.255", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_binds_loopback_by_default(gateway: Gateway) -> None:
    assert Settings().host == "127.0.0.1"
    runner = gateway.service._runner
    assert runner is not None
    assert [host for host, _ in runner.addresses] == ["127.0.0.1"]
    port = gateway.service.port
    assert port is not None
    address = non_loopback_address()
    if address is not None:  # reachable from the network? it must not be
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass


# ---- DNS rebinding (test_auth has the /health basics) -------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "0.0.0.0",
        "192.168.1.10:8000",
        "[::ffff:7f00:1]:8000",
        "",
    ],
)
@pytest.mark.parametrize("api", APIS)
def test_rebound_host_is_refused_on_the_api_routes(gateway: Gateway, api: Api, host: str) -> None:
    headers = {**headers_for(api, gateway.key), "Host": host}
    response = httpx.post(gateway.url + PATHS[api], json=chat_body(api, False), headers=headers, timeout=10)
    assert response.status_code == 403
    body = response.json()
    assert "DNS-rebinding" in error_message(api, body)
    assert (body["error"]["type"] == "permission_error") == (api == "anthropic")
    assert gateway.fake.requests == []  # refused before anything reached Kiro


@pytest.mark.gateway_settings(host="0.0.0.0")
def test_the_host_guard_is_off_when_listening_beyond_loopback(gateway: Gateway) -> None:
    """Exposed on purpose (HOST=0.0.0.0): LAN clients use names and addresses the gateway cannot know."""
    response = httpx.get(gateway.url + "/health", headers={"Host": "my-desktop.lan:8000"}, timeout=10)
    assert response.status_code == 200


# ---- CORS (test_auth: off for a GET, on for a listed origin) ---------------------------------------------


def preflight(gw: Gateway, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    }
    return httpx.options(gw.url + "/v1/messages", headers=headers, timeout=10)


def test_cors_off_by_default_even_for_preflights_and_posts(gateway: Gateway) -> None:
    assert "access-control-allow-origin" not in preflight(gateway, "https://app.example").headers
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=chat_body("anthropic", False),
        headers={**headers_for("anthropic", gateway.key), "Origin": "https://app.example"},
        timeout=10,
    )
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


@pytest.mark.gateway_settings(cors_origins="https://app.example, http://localhost:3000")
def test_cors_only_for_listed_origins_never_a_wildcard(gateway: Gateway) -> None:
    for origin in ("https://app.example", "http://localhost:3000"):
        response = preflight(gateway, origin)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["vary"] == "Origin"
        assert "access-control-allow-credentials" not in response.headers
    for origin in ("https://evil.example", "https://app.example.evil.example", "null", "*"):
        response = preflight(gateway, origin)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=chat_body("anthropic", False),
        headers={**headers_for("anthropic", gateway.key), "Origin": "https://app.example"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"


@pytest.mark.gateway_settings(cors_origins="https://app.example")
def test_an_unlisted_origins_preflight_is_a_403_permission_error(gateway: Gateway) -> None:
    response = preflight(gateway, "https://evil.example")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


@pytest.mark.gateway_settings(cors_origins="*")
def test_a_star_is_not_a_wildcard(gateway: Gateway) -> None:
    response = httpx.get(gateway.url + "/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.gateway_settings(cors_origins="https://app.example")
def test_a_listed_origin_can_read_its_error_responses(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=chat_body("anthropic", False),
        headers={"x-api-key": "wrong", "Origin": "https://app.example"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers.get("access-control-allow-origin") == "https://app.example"


# ---- the client key ---------------------------------------------------------------------------------


def _near_misses(key: str) -> list[str]:
    flip = {c: "A" if c != "A" else "B" for c in key}
    return [
        flip[key[0]] + key[1:],  # differs in the first character
        key[:-1] + flip[key[-1]],  # differs in the last character
        key[:-1],  # a prefix
        key + "x",  # an extension
        key.upper(),
        f"{key}:",  # an empty tenant part
    ]


@pytest.mark.parametrize("api", APIS)
def test_near_miss_keys_are_all_401(gateway: Gateway, api: Api) -> None:
    for wrong in _near_misses(TEST_KEY):
        for headers in ({"Authorization": f"Bearer {wrong}"}, {"x-api-key": wrong}):
            response = httpx.post(
                gateway.url + PATHS[api], json=chat_body(api, False), headers=headers, timeout=10
            )
            assert response.status_code == 401, wrong
            assert_no_secret(gateway, response.text)
            assert wrong.strip() not in response.text  # the presented key is not echoed either
    assert gateway.fake.requests == []


def test_the_key_is_compared_with_compare_digest() -> None:
    source = inspect.getsource(auth.authenticate)
    assert "hmac.compare_digest(" in source
    assert not re.search(r"(key|presented)\s*[!=]=\s*proxy_key|proxy_key\s*[!=]=", source)


@pytest.mark.gateway_settings(proxy_api_key="kt-my:own-key-0123456789")
def test_a_configured_key_with_a_colon_works(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=chat_body("anthropic", False),
        headers={"x-api-key": "kt-my:own-key-0123456789"},
        timeout=10,
    )
    assert response.status_code == 200


# ---- which routes need the key ----------------------------------------------------------------------


def test_public_routes_need_no_key_and_the_rest_do(gateway: Gateway) -> None:
    for path in ("/", "/health", "/openapi.json"):
        for headers in ({}, {"x-api-key": "wrong"}):
            assert httpx.get(gateway.url + path, headers=headers, timeout=10).status_code == 200
    assert httpx.head(gateway.url + "/", timeout=10).status_code == 200  # Claude Code probes with HEAD /
    for path in ("/metrics", "/v1/models", "/models", "/metrics?format=prometheus"):
        for headers in (
            {},
            {"x-api-key": "wrong"},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic eA=="},
        ):
            assert httpx.get(gateway.url + path, headers=headers, timeout=10).status_code == 401, (
                path,
                headers,
            )
        assert httpx.get(gateway.url + path, headers={"x-api-key": TEST_KEY}, timeout=10).status_code == 200


# ---- no secret anywhere -----------------------------------------------------------------------------


def error_scenarios(gw: Gateway, api: Api) -> Iterator[httpx.Response]:
    """Every kind of error a client can see; each yields what the client received."""
    body = chat_body(api, False)
    url = gw.url + PATHS[api]
    yield httpx.post(url, json=body, headers={"x-api-key": "nope"}, timeout=10)
    yield httpx.post(url, json=body, timeout=10)
    yield httpx.post(url, json={"model": MODEL}, headers=headers_for(api, gw.key), timeout=10)
    yield httpx.post(url, content=b"{", headers=headers_for(api, gw.key), timeout=10)
    for reply in (
        error_reply(400, "Improperly formed request."),
        error_reply(403, "Your User ID temporarily is suspended", "TEMPORARILY_SUSPENDED"),
        error_reply(402, "Monthly limit", "MONTHLY_REQUEST_COUNT"),
        *[throttle_reply()] * 3,
    ):
        gw.enqueue(reply)
    for _ in range(4):
        yield httpx.post(url, json=body, headers=headers_for(api, gw.key), timeout=10)
    for reply in (
        Reply([Text("part"), Disconnect()]),
        Reply([Text("part"), ExceptionFrame("InternalServerException", "kaput")]),
    ):
        gw.enqueue(reply, reply)  # once not streamed, once streamed
        yield httpx.post(url, json=body, headers=headers_for(api, gw.key), timeout=10)
        yield httpx.post(url, json=chat_body(api, True), headers=headers_for(api, gw.key), timeout=10)
    # a tenant whose refresh token Kiro does not know
    tenant = f"{gw.key}:rt-{'u' * 80}"
    yield httpx.post(
        url, json=body, headers={"x-api-key": tenant, "Authorization": f"Bearer {tenant}"}, timeout=10
    )
    # the refresh endpoint down while the token is dead
    assert gw.account is not None
    gw.thread.call(gw.account.expire_access_tokens)
    gw.fake.auth.refresh_failure = "down"
    yield httpx.post(url, json=body, headers=headers_for(api, gw.key), timeout=10)
    gw.fake.auth.refresh_failure = None


@ALLOW_RETRIES
@ALLOW_REFRESH_FAILURES
@pytest.mark.parametrize("api", APIS)
def test_no_error_body_carries_a_secret(gateway: Gateway, api: Api) -> None:
    call(gateway, api, False)  # refreshed: access and rotated refresh tokens exist
    seen = 0
    for response in error_scenarios(gateway, api):
        assert_no_secret(gateway, response.text)
        assert_no_secret(gateway, json.dumps(dict(response.headers)))
        seen += response.status_code >= 400 or "error" in response.text
    assert seen >= 12


def test_health_index_and_metrics_reveal_no_secret(gateway: Gateway) -> None:
    tenant = gateway.thread.call(gateway.fake.add_account, None)
    for key in (gateway.key, f"{gateway.key}:{tenant.refresh_token}"):  # the main login and a tenant's
        assert httpx.post(
            gateway.url + "/v1/messages",
            json=chat_body("anthropic", False),
            headers={"x-api-key": key},
            timeout=10,
        ).is_success
    for path in ("/", "/health", "/openapi.json", "/metrics", "/metrics?format=prometheus", "/v1/models"):
        response = httpx.get(gateway.url + path, headers={"x-api-key": gateway.key}, timeout=10)
        assert response.status_code == 200
        assert_no_secret(gateway, response.text)
        assert tenant.refresh_token not in response.text


@ALLOW_RETRIES
@ALLOW_REFRESH_FAILURES
def test_log_files_on_disk_hold_no_secret(gateway: Gateway) -> None:
    for api in APIS:
        for stream in (False, True):
            call(gateway, api, stream)
    list(error_scenarios(gateway, "anthropic"))
    assert gateway.account is not None
    access = list(gateway.account.access_tokens)[-1]
    logging.getLogger("kiro_tray.security_test").debug(
        "a careless line: refresh %s access %s key %s", gateway.account.refresh_token, access, gateway.key
    )
    assert leaked_secrets(gateway) == []  # the ring buffer (the log panel) first
    gateway.logs.close()  # flushes the file through the queue listener
    path = gateway.logs.file_path
    assert path is not None
    text = path.read_text(encoding="utf-8")
    assert "a careless line" in text and "DEBUG" in text  # the chatty level really was on
    assert_no_secret(gateway, text)
    # the harness closes the logs again at teardown: give it a live setup to close
    gateway.logs = setup_logging(logging.DEBUG, gateway.home / "logs2", console=False)


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.mark.allow_log(r"^oops ", logger="kiro_tray.security_test")  # the test's own line
def test_the_leak_scanner_catches_a_planted_secret(planted: Gateway) -> None:
    """The harness's teardown scan is only worth something if it finds a secret that is there."""
    call(planted, "openai", False)
    assert leaked_secrets(planted) == []
    record = next(iter(planted.service.store))
    access = next(iter(planted.fake.auth.accounts.values())).access_tokens
    token = next(iter(access))
    record.error = f"upstream said: {token}"  # a secret in the UI's model
    assert any(item.startswith("record.error") for item in leaked_secrets(planted))
    record.error = None
    record.headers["x-debug"] = "rt-" + "s" * 90  # a refresh-token shape in a recorded header
    assert leaked_secrets(planted) == ["record.headers[x-debug]"]
    del record.headers["x-debug"]
    # a registered secret logged by mistake is redacted before the ring (and the scanner) sees it
    logging.getLogger("kiro_tray.security_test").warning("oops %s", token)
    assert planted.logs.ring.lines[-1].message == "oops ***"
    assert leaked_secrets(planted) == []


# ---- files readable by the user only ------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, so only the code's explicit modes can make the files private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_settings_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "config" / "settings.json"
    write_settings_file(path, Settings(port=9000))
    assert mode(path) == 0o600
    path.chmod(0o644)  # an older, looser file is replaced by a private one
    write_settings_file(path, Settings(port=9001))
    assert mode(path) == 0o600


@ALLOW_KEYRING_FALLBACK
@pytest.mark.usefixtures("open_umask")
def test_credential_fallback_file_is_0600(tmp_path: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # no keyring at all: the visible fallback
    store = SecretStore(tmp_path / "config")
    store.set("refresh_token", "rt-" + "f" * 90)
    assert store.is_fallback
    assert mode(store.fallback_path) == 0o600
    assert mode(store.fallback_path.parent) == 0o700
    assert store.get("refresh_token") == "rt-" + "f" * 90


@ALLOW_KEYRING_FALLBACK
@ALLOW_KEY_GENERATED
@pytest.mark.usefixtures("open_umask")
def test_generated_client_key_lands_in_a_private_file_without_a_keyring(tmp_path: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    gw = start_gateway(tmp_path, proxy_api_key=None)
    try:
        key = gw.service.proxy_api_key
        assert gw.service.proxy_key_generated and key.startswith("kt-")
        fallback = gw.service.secret_store.fallback_path
        assert mode(fallback) == 0o600 and key in fallback.read_text(encoding="utf-8")
        response = httpx.get(gw.url + "/metrics", headers={"x-api-key": key}, timeout=10)
        assert response.status_code == 200
    finally:
        stop_gateway(gw)


@pytest.mark.usefixtures("open_umask")
def test_log_files_are_0600_also_after_rotation(tmp_path: Path) -> None:
    logs = setup_logging(logging.DEBUG, tmp_path / "logs", console=False)
    try:
        logging.getLogger("kiro_tray.security_test").info("first")
        (handler,) = [h for h in logs.listener.handlers if isinstance(h, PrivateRotatingFileHandler)]
        logs.listener.stop()  # drain the queue into the file
        assert logs.file_path is not None and mode(logs.file_path) == 0o600
        handler.doRollover()
        handler.emit(logging.LogRecord("kiro_tray", logging.INFO, __file__, 1, "second", None, None))
        rotated = logs.file_path.with_name(logs.file_path.name + ".1")
        assert mode(rotated) == 0o600 and mode(logs.file_path) == 0o600
        logs.file_path.chmod(0o644)  # a file left looser by an older version is tightened at start-up
        again = setup_logging(logging.DEBUG, tmp_path / "logs", console=False)
        again.close()
        assert mode(logs.file_path) == 0o600
    finally:
        for h in logs.listener.handlers:
            h.close()
