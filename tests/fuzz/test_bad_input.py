"""Bad input, generated: every malformed body is a 4xx in the caller's envelope naming the problem.

Bodies are built by Hypothesis and sent raw with ``httpx`` (the SDKs would refuse many of them): wrong
types, missing fields, huge strings, deep nesting, invalid base64 images, invalid UTF-8, unknown roles and
block types, JSON that is not an object. Never a 5xx, and the gateway keeps serving. Plus the body size
limit (a setting): a 50 MB body is a 413 in the envelope, and so is a small body over a small limit.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import gzip
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from blockbuster import blockbuster_ctx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.anthropic_request import SERVER_TOOL_RESULTS

from ..faults.checks import MODEL, Api, LoopErrors, assert_success, call, error_message, headers_for
from ..harness import Gateway, start_gateway, stop_gateway

# json.loads(bytes) looks up the codec a BOM or NUL bytes point to on first use, which imports it: look
# them up now, so the blocking-call detector does not flag that one-time import on the server loop.
for _codec in ("utf-8-sig", "utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-32-be", "utf-32-le"):
    codecs.lookup(_codec)

#: Where each API's bodies go; count_tokens validates like messages, in the Anthropic envelope.
ROUTES: dict[str, Api] = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
}
ROLES: dict[Api, set[str]] = {
    "openai": {"system", "developer", "user", "assistant", "tool"},
    "anthropic": {"user", "assistant", "system"},
}
BLOCK_TYPES: dict[Api, set[str]] = {
    "openai": {"text", "image_url", "refusal"},
    "anthropic": {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        *SERVER_TOOL_RESULTS,
    },
}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@dataclass(frozen=True)
class Bad:
    """A malformed body for ``path`` and what the error message must mention (any of ``needles``)."""

    path: str
    raw: bytes
    needles: tuple[str, ...]

    @property
    def api(self) -> Api:
        return ROUTES[self.path]


def valid_body(path: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    if ROUTES[path] == "anthropic":
        body["max_tokens"] = 100
    return body


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with blockbuster_ctx(scanned_modules=["kiro_tray"]):
        gateway = start_gateway(tmp_path_factory.mktemp("fuzz"))
        gateway.extra["loop_errors"] = LoopErrors(gateway)
        try:
            yield gateway
        finally:
            stop_gateway(gateway)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def send(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    headers = {**headers_for(bad.api, gw.key), "Content-Type": "application/json"}
    response = http.post(gw.url + bad.path, content=bad.raw, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    message = error_message(bad.api, response.json()).lower()
    assert any(needle.lower() in message for needle in bad.needles), (bad.needles, message[:300])
    if bad.api == "openai" and response.status_code == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"
    if bad.api == "anthropic" and response.status_code == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"


# ---- strategies -------------------------------------------------------------------------------------

paths = st.sampled_from(sorted(ROUTES))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def not_int_like(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not value.is_integer()
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return True
        return False
    return not isinstance(value, int)


BOOL_LIKE = {"0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}


def not_bool_like(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in BOOL_LIKE
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value not in (0, 1)
    return not isinstance(value, bool)


#: Values each field kind never accepts (pydantic's lax mode turns "5" into 5 and "yes" into True).
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "str": st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.lists(json_scalars, max_size=3),
    "list": st.integers() | st.booleans() | st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    "int": json_values.filter(lambda v: v is not None and not_int_like(v)) | st.integers(max_value=0),
    "bool": json_values.filter(lambda v: v is not None and not_bool_like(v)),
    "object": st.integers() | st.text(max_size=20) | st.lists(json_scalars, max_size=3),
}
FIELDS: dict[Api, dict[str, str]] = {
    "openai": {
        "model": "str",
        "messages": "list",
        "max_tokens": "int",
        "max_completion_tokens": "int",
        "n": "int",
        "stream": "bool",
        "tools": "list",
        "stream_options": "object",
        "parallel_tool_calls": "bool",
    },
    "anthropic": {
        "model": "str",
        "messages": "list",
        "max_tokens": "int",
        "stream": "bool",
        "tools": "list",
        "thinking": "object",
        "tool_choice": "object",
        "metadata": "object",
        "stop_sequences": "list",
    },
}


@st.composite
def wrong_types(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    api = ROUTES[path]
    name, kind = draw(st.sampled_from(sorted(FIELDS[api].items())))
    body = valid_body(path)
    body[name] = draw(WRONG[kind])
    if name == "model" and body[name] is None:
        body[name] = 0
    return Bad(path, encode(body), (name,))


@st.composite
def missing_fields(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    body = valid_body(path)
    gone = draw(st.sets(st.sampled_from(["model", "messages"]), min_size=1))
    for name in gone:
        del body[name]
    return Bad(path, encode(body), tuple(gone))


@st.composite
def not_objects(draw: st.DrawFn) -> Bad:
    value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return Bad(draw(paths), encode(value), ("json object",))


@st.composite
def unknown_roles(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    role = draw(st.text(max_size=30) | st.sampled_from(["tool", "function", "model", "USER", ""]))
    if role in ROLES[ROUTES[path]]:
        role = role + "?"
    body = valid_body(path)
    body["messages"] = [*body["messages"], {"role": role, "content": "hi"}]
    return Bad(path, encode(body), ("messages.1.role",))


@st.composite
def unknown_block_types(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    kind = draw(st.text(max_size=30) | st.sampled_from(["image_url", "image", "audio", "input_text", "TEXT"]))
    if kind in BLOCK_TYPES[ROUTES[path]]:
        kind = kind + "_v2"
    body = valid_body(path)
    body["messages"][0]["content"] = [{"type": "text", "text": "look"}, {"type": kind, "text": "x"}]
    return Bad(path, encode(body), ("messages.0.content.1",))


def invalid_base64(text: str) -> bool:
    cleaned = "".join(text.split())
    if cleaned.startswith("data:"):
        return False
    try:
        base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return True
    return not cleaned


@st.composite
def bad_images(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    data = draw(st.text(alphabet="ABCDabcd0189+/=!-_ %\n", max_size=40).filter(invalid_base64))
    body = valid_body(path)
    if ROUTES[path] == "openai":
        image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    else:
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    body["messages"][0]["content"] = [image, {"type": "text", "text": "what is this?"}]
    return Bad(path, encode(body), ("image data",))


def invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@st.composite
def bad_utf8(draw: st.DrawFn) -> Bad:
    path = draw(paths)
    junk = draw(st.binary(min_size=1, max_size=12).filter(invalid_utf8).filter(lambda b: b'"' not in b))
    raw = encode(valid_body(path)).replace(b"hello", b"hel" + junk + b"lo")
    return Bad(path, raw, ("utf-8",))


@st.composite
def deep_nesting(draw: st.DrawFn) -> Bad:
    """Nested lists where a message (an object) belongs: a type error, or too deep to parse at all."""
    path = draw(paths)
    depth = draw(st.integers(min_value=2, max_value=50_000))
    nest = b"[" * depth + b"]" * depth
    raw = encode(valid_body(path)).replace(b'[{"role"', b"[" + nest + b', {"role"', 1)
    return Bad(path, raw, ("messages.0", "nested more than"))


@st.composite
def huge_strings(draw: st.DrawFn) -> Bad:
    """A multi-megabyte string where a short token belongs (a role, a block type)."""
    path = draw(paths)
    size = draw(st.integers(min_value=100_000, max_value=3_000_000))
    huge = draw(st.sampled_from("xyz\u00e9\u4e2d")) * size
    body = valid_body(path)
    if draw(st.booleans()):
        body["messages"][0]["role"] = huge
        return Bad(path, encode(body), ("messages.0.role",))
    body["messages"][0]["content"] = [{"type": huge, "text": "x"}]
    return Bad(path, encode(body), ("messages.0.content.0",))


# ---- properties -------------------------------------------------------------------------------------


@FUZZ
@given(bad=wrong_types())
def test_wrong_types_name_the_field(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=missing_fields())
def test_missing_fields_are_named(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=not_objects())
def test_json_that_is_not_an_object(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=unknown_roles())
def test_unknown_roles(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=unknown_block_types())
def test_unknown_block_types(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=bad_images())
def test_invalid_base64_images(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@FUZZ
@given(bad=bad_utf8())
def test_invalid_utf8(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@settings(FUZZ, max_examples=40)
@given(bad=deep_nesting())
def test_deep_nesting(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@settings(FUZZ, max_examples=15)
@given(bad=huge_strings())
def test_huge_strings(gw: Gateway, http: httpx.Client, bad: Bad) -> None:
    send(gw, http, bad)


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{", "not valid json"),
        (b'{"model": "m",}', "not valid json"),
        (b"\xef\xbb\xbf{}", "model"),  # a UTF-8 BOM, then an object without model and messages
        (b"\x00\x01\x02", "json"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "\x00"}]}', "invalid control character"),
    ],
)
def test_unparseable_bodies(gw: Gateway, http: httpx.Client, path: str, raw: bytes, needle: str) -> None:
    send(gw, http, Bad(path, raw, (needle,)))


# ---- regressions: each of these was a 500 ----------------------------------------------------------


def nested_json(depth: int) -> str:
    """``{"deep": [[[...]]]}`` as text (``json.dumps`` itself cannot write 5,000 levels)."""
    return '{"deep": ' + "[" * depth + "]" * depth + "}"


def with_tool_history(path: str, tool_input_json: str) -> bytes:
    """A body whose assistant turn called a tool with ``tool_input_json`` (raw JSON text) as its input."""
    marker = '"__INPUT__"'
    body = valid_body(path)
    if ROUTES[path] == "openai":
        call = {"id": "c1", "function": {"name": "f", "arguments": "__ARGS__"}}
        body["messages"] = [
            {"role": "user", "content": "use the tool"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]
        return encode(body).replace(b'"__ARGS__"', json.dumps(tool_input_json).encode())
    body["messages"] = [
        {"role": "user", "content": "use the tool"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": "__INPUT__"}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "done"}]},
    ]
    return encode(body).replace(marker.encode(), tool_input_json.encode())


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_deep_nesting_inside_free_form_fields(gw: Gateway, http: httpx.Client, path: str) -> None:
    send(gw, http, Bad(path, with_tool_history(path, nested_json(900)), ("nested more than",)))


def test_deep_nesting_inside_openai_free_form_fields(gw: Gateway, http: httpx.Client) -> None:
    body = valid_body("/v1/chat/completions")
    body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": "__SCHEMA__"}}]
    raw = encode(body).replace(b'"__SCHEMA__"', nested_json(900).encode())
    send(gw, http, Bad("/v1/chat/completions", raw, ("nested more than",)))


def test_deeply_nested_openai_tool_arguments_are_kept_as_text(gw: Gateway, http: httpx.Client) -> None:
    """Arguments are a string: ones that do not parse (too deep here) are passed on as raw text."""
    raw = with_tool_history("/v1/chat/completions", nested_json(5_000))
    response = http.post(gw.url + "/v1/chat/completions", content=raw, headers=headers_for("openai", gw.key))
    assert response.status_code == 200, response.text[:300]
    sent = json.dumps(gw.fake.requests[-1].body)
    assert "raw_arguments" in sent


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_lone_surrogate_escapes(gw: Gateway, http: httpx.Client, path: str) -> None:
    """``\\ud800`` is a valid JSON escape but no Unicode character (a pair, ``\\ud83d\\ude00``, is fine)."""
    raw = encode(valid_body(path)).replace(b"hello", b"hel\\ud800lo")
    send(gw, http, Bad(path, raw, ("surrogate",)))
    paired = encode(valid_body(path)).replace(b"hello", b"hel\\ud83d\\ude00lo")
    response = http.post(gw.url + path, content=paired, headers=headers_for(ROUTES[path], gw.key))
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_integer_too_long_to_parse(gw: Gateway, http: httpx.Client, path: str) -> None:
    raw = encode(valid_body(path)).replace(b'"hello"', b"1" + b"0" * 5000)
    send(gw, http, Bad(path, raw, ("digits", "number", "integer")))


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize("path", sorted(ROUTES))
def test_non_json_constants_are_refused(gw: Gateway, http: httpx.Client, path: str, constant: bytes) -> None:
    """Python's json reads them; no other parser does, Kiro's included."""
    raw = encode(valid_body(path))[:-1] + b', "temperature": ' + constant + b"}"
    send(gw, http, Bad(path, raw, ("not valid json",)))
    raw = with_tool_history(path, '{"x": ' + constant.decode() + "}")
    if ROUTES[path] == "anthropic":  # (OpenAI's arguments are text: kept raw, like any unparseable ones)
        send(gw, http, Bad(path, raw, ("not valid json",)))


@pytest.mark.parametrize("where", ["block type", "model"])
def test_error_messages_quote_only_an_excerpt(gw: Gateway, http: httpx.Client, where: str) -> None:
    body = valid_body("/v1/messages")
    if where == "model":
        body["model"] = "m" * 100_000  # (a 1 MB one is over the payload budget: a short 400)
    else:
        body["messages"][0]["content"] = [{"type": "t" * 1_000_000, "text": "x"}]
    response = http.post(gw.url + "/v1/messages", json=body, headers=headers_for("anthropic", gw.key))
    assert 400 <= response.status_code < 500
    assert len(error_message("anthropic", response.json())) < 1000


# ---- the size limit ---------------------------------------------------------------------------------


def oversized(path: str, size: int) -> bytes:
    body = valid_body(path)
    body["messages"][0]["content"] = "a" * size
    return encode(body)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_50_mb_body_is_413_in_the_envelope(gw: Gateway, http: httpx.Client, path: str) -> None:
    api = ROUTES[path]
    response = http.post(
        gw.url + path,
        content=oversized(path, 50 * 1024 * 1024),
        headers={**headers_for(api, gw.key), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    message = error_message(api, response.json())
    assert "too large" in message and "33554432" in message  # the default MAX_BODY_MB, 32
    error = response.json()["error"]
    assert error["type"] == ("invalid_request_error" if api == "openai" else "request_too_large")


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """100 MB of JSON in 100 KB of gzip."""
    return gzip.compress(oversized("/v1/messages", 100 * 1024 * 1024), 9)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_gzip_bomb_is_413(gw: Gateway, http: httpx.Client, gzip_bomb: bytes, path: str) -> None:
    """The limit counts decompressed bytes, and reading stops there."""
    bomb = gzip_bomb
    headers = {**headers_for(ROUTES[path], gw.key), "Content-Type": "application/json"}
    started = time.monotonic()
    response = http.post(gw.url + path, content=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "too large" in error_message(ROUTES[path], response.json())
    assert time.monotonic() - started < 15  # a hang guard: inflating all 100 MB is what takes long


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_an_undecodable_content_encoding_is_a_400(gw: Gateway, http: httpx.Client, path: str) -> None:
    """The 400 always arrives and says ``Connection: close``: the rest of an undecodable body cannot be
    skipped, so the gateway closes that connection instead of letting a client send its next request into
    it (which, under load, met a reset or "server disconnected"). The client's pool sends no request
    after it on that connection, and the request after it, on a new connection, succeeds."""
    headers = {**headers_for(ROUTES[path], gw.key), "Content-Type": "application/json"}
    response = http.post(gw.url + path, content=b"not gzip", headers={**headers, "Content-Encoding": "gzip"})
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Connection"] == "close"
    assert "gzip" in error_message(ROUTES[path], response.json())
    after = http.post(gw.url + path, content=b"{}", headers=headers)  # the pool did not reuse it
    assert after.status_code == 400 and "Connection" not in after.headers


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_wrong_method_is_405_naming_the_path(gw: Gateway, http: httpx.Client, path: str) -> None:
    response = http.get(gw.url + path, headers=headers_for(ROUTES[path], gw.key))
    assert response.status_code == 405
    message = error_message(ROUTES[path], response.json())
    assert path in message and "POST" in message


@pytest.mark.gateway_settings(max_body_mb=0.01)
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_the_body_limit_is_a_setting(gateway: Gateway, api: Api) -> None:
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    headers = {**headers_for(api, gateway.key), "Content-Type": "application/json"}
    response = httpx.post(gateway.url + path, content=oversized(path, 20_000), headers=headers, timeout=10)
    assert response.status_code == 413
    assert "10485 exceeded" in error_message(api, response.json())  # 0.01 MB
    assert_success(call(gateway, api, False, text="x" * 5_000), api, False)


# ---- afterwards -------------------------------------------------------------------------------------


def test_the_gateway_still_serves_and_never_answered_5xx(gw: Gateway, http: httpx.Client) -> None:
    """Runs last in this module: after everything above, the same gateway is healthy."""
    assert http.get(gw.url + "/health").json()["status"] == "ok"
    for api in ("openai", "anthropic"):
        for stream in (False, True):
            assert_success(call(gw, api, stream, text="still here"), api, stream, "You said: still here")
    statuses = gw.service.metrics.by_status
    assert sum(statuses.values()) > 800
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    assert server_errors == 0, statuses
    gw.extra["loop_errors"].check()
