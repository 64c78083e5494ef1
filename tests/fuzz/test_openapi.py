"""The generated OpenAPI description, and schemathesis run against a live gateway with it.

``build_openapi()`` is checked directly (shape, security, the error tree, request schemas that accept
exactly what the models accept); schemathesis then sends positive and negative cases for every
operation: no 5xx, and every answer's status and content type are ones the description declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from blockbuster import blockbuster_ctx
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kiro_tray.gateway.dialects import CHAT, MESSAGES, RESPONSES
from kiro_tray.gateway.openapi import build_openapi
from kiro_tray.protocol.anthropic_request import parse_anthropic_request
from kiro_tray.protocol.errors import GatewayError
from kiro_tray.protocol.openai_request import parse_openai_request
from kiro_tray.protocol.responses_request import parse_responses_request

from ..harness import Gateway, start_gateway, stop_gateway

DOCUMENT = build_openapi()
COMPONENTS = DOCUMENT["components"]
ROUTES = {
    ("post", "/v1/chat/completions"),
    ("post", "/v1/messages"),
    ("post", "/v1/messages/count_tokens"),
    ("post", "/v1/responses"),
    ("post", "/v1/responses/input_tokens"),
    ("get", "/v1/responses/{response_id}"),
    ("delete", "/v1/responses/{response_id}"),
    ("get", "/v1/responses/{response_id}/input_items"),
    ("get", "/v1/models"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/openapi.json"),
}


def validator(component: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{component}", "components": COMPONENTS}
    )


# ---- the document ---------------------------------------------------------------------------------


def test_document_is_openapi_3_1_with_every_route() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    assert {(method, path) for path, ops in DOCUMENT["paths"].items() for method in ops} == ROUTES
    loaded = schemathesis.openapi.from_dict(DOCUMENT)
    assert {(op.method.lower(), op.path) for op in (r.ok() for r in loaded.get_all_operations())} == ROUTES
    assert build_openapi("http://127.0.0.1:8000")["servers"] == [{"url": "http://127.0.0.1:8000"}]


def test_security_schemes_and_public_routes() -> None:
    assert COMPONENTS["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
    assert DOCUMENT["security"] == [{"bearer": []}, {"apiKey": []}]
    public = {
        path
        for path, ops in DOCUMENT["paths"].items()
        if ops["get" if "get" in ops else "post"].get("security") == []
    }
    assert public == {"/", "/health", "/openapi.json"}  # the auth middleware's PUBLIC_PATHS


def _tree(root: type[GatewayError] = GatewayError) -> Iterator[type[GatewayError]]:
    yield root
    for sub in root.__subclasses__():
        yield from _tree(sub)


def test_chat_routes_declare_every_error_status_in_their_envelope() -> None:
    for path, dialect, envelope in (
        ("/v1/chat/completions", CHAT, "OpenAIError"),
        ("/v1/messages", MESSAGES, "AnthropicError"),
        ("/v1/responses", RESPONSES, "OpenAIError"),
    ):
        responses = DOCUMENT["paths"][path]["post"]["responses"]
        kept = (cls for cls in _tree() if cls.kind != "method_not_allowed")
        statuses = {str(dialect.error_status(cls("x"))) for cls in kept}
        assert statuses <= set(responses), (path, statuses - set(responses))
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith(envelope)
        assert set(responses["200"]["content"]) == {"application/json", "text/event-stream"}
    assert "529" in DOCUMENT["paths"]["/v1/messages"]["post"]["responses"]  # overloaded, Anthropic only
    assert "529" not in DOCUMENT["paths"]["/v1/chat/completions"]["post"]["responses"]


def test_error_envelopes_match_the_error_tree() -> None:
    openai_error, anthropic_error = validator("OpenAIError"), validator("AnthropicError")
    for cls in _tree():
        error = cls("something went wrong", param="messages.0")
        assert openai_error.is_valid(CHAT.error_body(error)), cls
        assert anthropic_error.is_valid(MESSAGES.error_body(error)), cls
        assert not openai_error.is_valid(MESSAGES.error_body(error))


OPENAI_BODIES: list[Any] = [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "stop": "x"},
    {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": []}], "stop": ["a"]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "data:x"}]}]},
    {"model": "m", "messages": [], "stream": True},
    {"model": "", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": 5}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
    {"model": "m", "messages": [{"role": "user"}], "max_tokens": 0},
    {"messages": [{"role": "user", "content": "hi"}]},
]
ANTHROPIC_BODIES: list[Any] = [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "system": "be brief"},
    {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "web_search_tool_result", "tool_use_id": "t"}]}],
    },
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "fancy_tool_result"}]}]},
    {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
        ],
    },
    {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 10},
    },
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "sometimes"}},
    {"model": "m", "messages": [{"role": "tool", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]},
    {"model": "m"},
]
RESPONSES_BODIES: list[Any] = [
    {"model": "m", "input": "hi"},
    {"model": "m", "input": [{"role": "user", "content": "hi"}], "instructions": "be brief"},
    {"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
    {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "ok"}]},
    {"model": "m", "input": [{"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}]},
    {"model": "m", "input": [{"type": "web_search_call", "id": "w"}], "tools": [{"type": "web_search"}]},
    {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]},
    {"model": "m", "input": [{"role": "robot", "content": "hi"}]},
    {"model": "m", "input": [{"type": "function_call_output", "output": "ok"}]},
    {"model": "m", "input": "hi", "truncation": "sometimes"},
    {"model": "m", "input": 5},
    {"input": "hi"},
]


def _accepted(parse: Any, body: Any) -> bool:
    try:
        parse(body)
    except GatewayError:
        return False
    return True


@pytest.mark.parametrize(
    ("component", "parse", "body"),
    [("OpenAIChatCompletionRequest", parse_openai_request, b) for b in OPENAI_BODIES]
    + [("AnthropicMessagesRequest", parse_anthropic_request, b) for b in ANTHROPIC_BODIES]
    + [("ResponsesResponsesRequest", parse_responses_request, b) for b in RESPONSES_BODIES],
)
def test_request_schema_accepts_what_the_model_accepts(component: str, parse: Any, body: Any) -> None:
    assert validator(component).is_valid(body) == _accepted(parse, body)


# ---- schemathesis against a live gateway ----------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with blockbuster_ctx(scanned_modules=["kiro_tray"]):
        gw = start_gateway(tmp_path_factory.mktemp("openapi"))
        try:
            yield gw
        finally:
            stop_gateway(gw)


def test_openapi_json_is_served_without_a_key(live: Gateway) -> None:
    response = httpx.get(live.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    served = response.json()
    assert served["servers"] == [{"url": live.url}]
    assert served == build_openapi(live.url)


SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.timeout(300)
@SCHEMA.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis(case: schemathesis.Case, live: Gateway) -> None:
    case.call_and_validate(base_url=live.url, headers={"x-api-key": live.key}, checks=CHECKS, timeout=30)
