"""Client API dialects: all the gateway knows of one client API, in one table entry.

A :class:`Dialect` names its routes, how a body is validated into a :class:`ClientRequest` (which locates
its remote images and converts into the neutral conversation), the builder that turns Kiro events into the
API's stream or body, its error envelope, whether silences get pings, its model-list format and its label
in the request records. Routes, the relay, the error middleware, OpenAPI and the store look the dialect up;
nothing else compares API names. Adding an API is one entry here plus its protocol modules.

Optional capabilities, generic: a dialect whose turns need per-request state (the Responses API resolves
``previous_response_id`` from its stored responses before conversion and stores what it answered) names a
``scope``: :meth:`Dialect.bound` gives the routes a copy whose ``parse`` and ``builder`` are the scope's,
``install`` gives the app the dialect's own
state, ``extra_routes`` its other routes (served and described in OpenAPI), ``count_body`` the shape of
its token-count answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel

from ..protocol import anthropic_errors, openai_errors
from ..protocol.anthropic_request import MessagesRequest, parse_anthropic_request
from ..protocol.anthropic_stream import PING, AnthropicStream
from ..protocol.conversation import ClientRequest
from ..protocol.errors import GatewayError
from ..protocol.kiro_payload import ConvertOptions, KiroRequest, build_kiro_request
from ..protocol.openai_request import ChatCompletionRequest, parse_openai_request
from ..protocol.openai_stream import OpenAIStream
from ..protocol.responses_request import ResponseShape, ResponsesRequest, new_id, parse_responses_request
from ..protocol.responses_stream import ResponsesStream
from ..protocol.turn import TurnDriven, TurnParams
from ..settings import Settings
from . import responses_store

#: A model in ``/v1/models``: id, display name, context window, output limit.
ModelEntry = tuple[str, str, int, int]
#: A fixed date for the models' ``created`` fields (Kiro does not report one).
MODELS_CREATED = 1_735_689_600  # 2025-01-01


@dataclass(frozen=True, slots=True)
class ApiDoc:
    """How the dialect appears in ``/openapi.json``."""

    operation_id: str
    summary: str
    request_schema: str  # component name of the request model
    response_schema: str
    error_schema: str
    schema_prefix: str  # prefix of the request model's component schemas
    count_schema: str = "AnthropicTokenCountResponse"
    count_operation_id: str = "countTokens"


class TurnScope(Protocol):
    """A dialect's per-request state for one turn (the Responses API's stored responses): it parses
    (resolving what the body refers to) and builds the answer (keeping what it must)."""

    def parse(self, body: object) -> ClientRequest: ...

    def builder(self, params: TurnParams, *, collect: bool = False) -> TurnDriven: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ExtraRoute:
    """A route of the dialect besides its turn and count routes (``GET /v1/responses/{id}``, ...)."""

    method: str
    path: str
    handler: Handler
    summary: str
    operation_id: str
    response_schema: str  # component name of the 200 answer


def _count_body(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    #: The API's name in request records, the requests panel and logs.
    label: str
    #: POST routes serving a turn (each also answers with doubled slashes).
    paths: tuple[str, ...]
    parse: Callable[[object], ClientRequest]
    #: ``builder(params, collect=...)``: a stream builder, or the same collecting a whole body.
    builder: Callable[..., TurnDriven]
    error_status: Callable[[GatewayError], int]
    error_body: Callable[[GatewayError], dict[str, Any]]
    #: Sent during upstream silences of a stream (None: this API has no keep-alive event).
    ping: bytes | None
    model_list: Callable[[list[ModelEntry]], dict[str, Any]]
    request_model: type[BaseModel]
    doc: ApiDoc
    #: POST routes estimating a body's input tokens (``count_tokens``), if the API has them.
    count_paths: tuple[str, ...] = ()
    #: Shared routes (``/v1/models``) answer in this dialect when the request carries this header.
    marker_header: str | None = None
    #: The count routes' answer for an estimate.
    count_body: Callable[[int], dict[str, Any]] = _count_body
    #: Per-request state for a turn (and a count), when the dialect needs one.
    scope: Callable[[web.Request], TurnScope] | None = None
    #: Gives the app the dialect's own state (called once per app, with the settings).
    install: Callable[[web.Application, Settings], object] | None = None
    extra_routes: tuple[ExtraRoute, ...] = ()

    def bound(self, request: web.Request) -> tuple[Dialect, TurnScope | None]:
        """This dialect for one request: with its scope's parse and builder when it has a scope."""
        if self.scope is None:
            return self, None
        scope = self.scope(request)
        return replace(self, parse=scope.parse, builder=scope.builder), scope

    def to_kiro(self, body: object, options: ConvertOptions | None = None) -> KiroRequest:
        """A body (any parsed JSON value) -> a Kiro request; :class:`InvalidRequest` if it is bad."""
        options = options or ConvertOptions()
        return build_kiro_request(self.parse(body).to_conversation(options.fetched_images), options)

    def error_response(self, error: GatewayError) -> web.Response:
        return web.json_response(
            self.error_body(error), status=self.error_status(error), headers=error.headers()
        )


def _openai_models(entries: list[ModelEntry]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": mid,
                "object": "model",
                "created": MODELS_CREATED,
                "owned_by": "kiro",
                "display_name": name,
                "context_window": window,
                "max_output_tokens": max_out,
            }
            for mid, name, window, max_out in entries
        ],
    }


def _anthropic_models(entries: list[ModelEntry]) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(MODELS_CREATED))
    data = [
        {"type": "model", "id": mid, "display_name": name, "created_at": created}
        for mid, name, _, _ in entries
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def _openai_builder(params: TurnParams, *, collect: bool = False) -> TurnDriven:
    return OpenAIStream(params, collect=collect)


def _anthropic_builder(params: TurnParams, *, collect: bool = False) -> TurnDriven:
    return AnthropicStream(params, collect=collect)


CHAT = Dialect(
    name="chat",
    label="openai",
    paths=("/v1/chat/completions", "/chat/completions"),
    parse=parse_openai_request,
    builder=_openai_builder,
    error_status=openai_errors.error_status,
    error_body=openai_errors.error_body,
    ping=None,
    model_list=_openai_models,
    request_model=ChatCompletionRequest,
    doc=ApiDoc(
        operation_id="createChatCompletion",
        summary="OpenAI chat completions (streamed with stream: true)",
        request_schema="OpenAIChatCompletionRequest",
        response_schema="OpenAIChatCompletionResponse",
        error_schema="OpenAIError",
        schema_prefix="OpenAI",
    ),
)

MESSAGES = Dialect(
    name="messages",
    label="anthropic",
    paths=("/v1/messages", "/messages"),
    parse=parse_anthropic_request,
    builder=_anthropic_builder,
    error_status=anthropic_errors.error_status,
    error_body=anthropic_errors.error_body,
    ping=PING,
    model_list=_anthropic_models,
    request_model=MessagesRequest,
    doc=ApiDoc(
        operation_id="createMessage",
        summary="Anthropic messages (streamed with stream: true)",
        request_schema="AnthropicMessagesRequest",
        response_schema="AnthropicMessageResponse",
        error_schema="AnthropicError",
        schema_prefix="Anthropic",
    ),
    count_paths=("/v1/messages/count_tokens", "/messages/count_tokens"),
    marker_header="anthropic-version",
)


def _responses_builder(params: TurnParams, *, collect: bool = False) -> TurnDriven:
    return ResponsesStream(params, ResponseShape(new_id("resp"), int(time.time())), collect=collect)


RESPONSES = Dialect(
    name="responses",
    label="responses",
    paths=("/v1/responses", "/responses"),
    parse=parse_responses_request,
    builder=_responses_builder,
    error_status=openai_errors.error_status,
    error_body=openai_errors.error_body,
    ping=None,
    model_list=_openai_models,
    request_model=ResponsesRequest,
    doc=ApiDoc(
        operation_id="createResponse",
        summary="OpenAI Responses (streamed with stream: true; stored with store)",
        request_schema="ResponsesResponsesRequest",
        response_schema="OpenAIResponse",
        error_schema="OpenAIError",
        schema_prefix="Responses",
        count_schema="OpenAIResponseInputTokens",
        count_operation_id="countResponseInputTokens",
    ),
    count_paths=("/v1/responses/input_tokens", "/responses/input_tokens"),
    count_body=lambda tokens: {"object": "response.input_tokens", "input_tokens": tokens},
    scope=responses_store.ResponsesTurn,
    install=responses_store.install,
    extra_routes=(
        ExtraRoute(
            "GET",
            "/v1/responses/{response_id}",
            responses_store.get_response,
            "A stored response",
            "getResponse",
            "OpenAIResponse",
        ),
        ExtraRoute(
            "DELETE",
            "/v1/responses/{response_id}",
            responses_store.delete_response,
            "Delete a stored response",
            "deleteResponse",
            "OpenAIResponseDeleted",
        ),
        ExtraRoute(
            "GET",
            "/v1/responses/{response_id}/input_items",
            responses_store.input_items,
            "A stored response's input items (paged)",
            "listInputItems",
            "OpenAIResponseItemList",
        ),
    ),
)

#: Every dialect; the first is the default for requests no route or header ties to one.
DIALECTS: tuple[Dialect, ...] = (CHAT, MESSAGES, RESPONSES)


def by_headers(headers: Any, path: str = "") -> Dialect:
    """The dialect of a request no route ties to one (a shared route, a preflight, an unknown method):
    the one whose marker header it carries, else the one whose routes its path falls under."""
    for dialect in DIALECTS:
        if dialect.marker_header is not None and dialect.marker_header in headers:
            return dialect
    clean = "/" + "/".join(part for part in path.split("/") if part)
    for dialect in DIALECTS:
        if any(clean == p or clean.startswith(p + "/") for p in dialect.paths):
            return dialect
    return DIALECTS[0]
