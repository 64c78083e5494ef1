"""``GET /openapi.json``: the gateway's OpenAPI 3.1 description, generated, not written by hand.

Request bodies come from the pydantic request models (``protocol/openai_request.py``,
``protocol/anthropic_request.py``), so the description cannot drift from what is validated. Error
responses come from the error tree (``errors.py``): every status a route can answer, in the envelope of
the route's API. Response bodies are described loosely (the fields clients rely on).

Two things the models know but their JSON schema would not say are added on the way:

- a before-validator that turns a string (or null) into something else, e.g. ``content: "hi"`` into a
  text block list, means the wire also accepts a string (or null) there;
- server tool results (``web_search_tool_result``, ...) share one block model whose ``type`` is any of
  their names, not any string.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .. import NAME, __version__
from ..protocol.anthropic_request import SERVER_TOOL_RESULTS
from ..protocol.errors import (
    ClientAuthError,
    ForbiddenHost,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from .dialects import DIALECTS, Dialect
from .keys import SERVICE

Schema = dict[str, Any]

#: The dialect of routes no client API owns (the info routes, /v1/models without a marker header).
DEFAULT = DIALECTS[0]
_PROBE = "probe text"


def _widens(convert: Callable[[Any], Any], value: object) -> bool:
    """Whether a before-validator turns ``value`` into something else (so it accepts it)."""
    try:
        return bool(convert(value) != value)
    except (TypeError, ValueError):
        return False


class _WireSchema(GenerateJsonSchema):
    """Request JSON schema as the wire accepts it (see the module docstring)."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        function = schema["function"]
        if function["type"] != "no-info":
            return inner
        convert = function["function"]
        extra: list[JsonSchemaValue] = []
        if _widens(convert, _PROBE):
            extra.append({"type": "string"})
        if _widens(convert, None):
            extra.append({"type": "null"})
        return {"anyOf": [*extra, inner]} if extra else inner


def _model_components(model: type[BaseModel], prefix: str) -> dict[str, Schema]:
    """``model`` and every model it uses as components named ``<prefix><Model>``."""
    schema = model.model_json_schema(
        ref_template=f"#/components/schemas/{prefix}{{model}}", schema_generator=_WireSchema
    )
    components = {f"{prefix}{name}": definition for name, definition in schema.pop("$defs", {}).items()}
    components[f"{prefix}{model.__name__}"] = schema
    return components


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}


def _response_schemas() -> dict[str, Schema]:
    usage = {"type": "object", "additionalProperties": {"type": ["number", "integer"]}}
    return {
        "OpenAIError": _object(
            ["error"],
            error=_object(
                ["message", "type", "param", "code"],
                message=STRING,
                type=STRING,
                param=NULLABLE_STRING,
                code=NULLABLE_STRING,
            ),
        ),
        "AnthropicError": _object(
            ["type", "error"],
            type={"const": "error"},
            error=_object(["type", "message"], type=STRING, message=STRING),
        ),
        "OpenAIChatCompletionResponse": _object(
            ["id", "object", "created", "model", "choices"],
            id=STRING,
            object={"const": "chat.completion"},
            created=INTEGER,
            model=STRING,
            choices={
                "type": "array",
                "items": _object(
                    ["index", "message", "finish_reason"],
                    index=INTEGER,
                    message=_object(["role"], role={"const": "assistant"}, content=NULLABLE_STRING),
                    finish_reason={"enum": ["stop", "length", "tool_calls", "content_filter"]},
                ),
            },
            usage=usage,
        ),
        "AnthropicMessageResponse": _object(
            ["id", "type", "role", "model", "content", "stop_reason", "usage"],
            id=STRING,
            type={"const": "message"},
            role={"const": "assistant"},
            model=STRING,
            content={"type": "array", "items": _object(["type"], type=STRING)},
            stop_reason={"enum": ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]},
            stop_sequence=NULLABLE_STRING,
            usage=usage,
        ),
        "AnthropicTokenCountResponse": _object(["input_tokens"], input_tokens=INTEGER),
        "OpenAIResponse": _object(
            ["id", "object", "created_at", "status", "model", "output"],
            id=STRING,
            object={"const": "response"},
            created_at=INTEGER,
            status={"enum": ["completed", "incomplete", "failed", "in_progress"]},
            model=STRING,
            output={"type": "array", "items": _object(["type"], type=STRING)},
            usage={"anyOf": [{"type": "object"}, {"type": "null"}]},
        ),
        "OpenAIResponseInputTokens": _object(
            ["object", "input_tokens"], object={"const": "response.input_tokens"}, input_tokens=INTEGER
        ),
        "OpenAIResponseDeleted": _object(
            ["id", "object", "deleted"],
            id=STRING,
            object={"const": "response.deleted"},
            deleted={"const": True},
        ),
        "OpenAIResponseItemList": _object(
            ["object", "data", "has_more"],
            object={"const": "list"},
            data={"type": "array", "items": {"type": "object"}},
            first_id=NULLABLE_STRING,
            last_id=NULLABLE_STRING,
            has_more={"type": "boolean"},
        ),
        "ModelListResponse": {
            "description": "OpenAI's list format, or Anthropic's for a request with anthropic-version.",
            "anyOf": [
                _object(
                    ["object", "data"],
                    object={"const": "list"},
                    data={"type": "array", "items": _object(["id", "object"], id=STRING, object=STRING)},
                ),
                _object(
                    ["data", "has_more"],
                    data={"type": "array", "items": _object(["id", "type"], id=STRING, type=STRING)},
                    has_more={"type": "boolean"},
                ),
            ],
        },
        "HealthResponse": _object(
            ["status", "name", "version", "credentials"],
            status={"enum": ["ok", "degraded"]},
            name=STRING,
            version=STRING,
            uptime_s={"type": "number"},
            credentials=_object(["state"], state=STRING),
            active_streams=INTEGER,
        ),
        "IndexResponse": _object(
            ["name", "version", "endpoints"], name=STRING, version=STRING, endpoints={"type": "object"}
        ),
        "MetricsResponse": _object(["requests_total"], requests_total=INTEGER),
    }


def _error_classes(root: type[GatewayError] = GatewayError) -> Iterator[type[GatewayError]]:
    yield root
    for sub in root.__subclasses__():
        yield from _error_classes(sub)


def _error_statuses(dialect: Dialect, classes: tuple[type[GatewayError], ...]) -> dict[int, list[str]]:
    """Status -> the error kinds ``classes`` answer with it in ``dialect``."""
    statuses: dict[int, list[str]] = {}
    for cls in classes:
        status = dialect.error_status(cls(_PROBE))
        kinds = statuses.setdefault(status, [])
        if cls.kind not in kinds:
            kinds.append(cls.kind)
    return dict(sorted(statuses.items()))


def _error_responses(dialect: Dialect, classes: tuple[type[GatewayError], ...]) -> dict[str, Schema]:
    return {
        str(status): {
            "description": "Error: " + ", ".join(kinds),
            "content": {"application/json": {"schema": _ref(dialect.doc.error_schema)}},
        }
        for status, kinds in _error_statuses(dialect, classes).items()
    }


def _json(schema_name: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _chat(schema_name: str, description: str) -> Schema:
    """A chat answer: JSON, or server-sent events when the body asks ``"stream": true``."""
    response = _json(schema_name, description)
    response["content"]["text/event-stream"] = {"schema": STRING}
    return response


#: Errors any route can answer: the DNS-rebinding guard and the unexpected.
BASE_ERRORS: tuple[type[GatewayError], ...] = (ForbiddenHost, GatewayError)
KEYED_ERRORS = (*BASE_ERRORS, ClientAuthError)
#: A chat route can answer every error but 405 (its method is the right one).
CHAT_ERRORS = tuple(cls for cls in _error_classes() if cls is not MethodNotAllowed)
PUBLIC: list[dict[str, list[str]]] = []


def _dialect_paths(dialect: Dialect) -> dict[str, Schema]:
    doc = dialect.doc
    body = {"required": True, "content": {"application/json": {"schema": _ref(doc.request_schema)}}}
    paths: dict[str, Schema] = {
        dialect.paths[0]: {
            "post": {
                "operationId": doc.operation_id,
                "summary": doc.summary,
                "requestBody": body,
                "responses": {
                    "200": _chat(doc.response_schema, "The answer"),
                    **_error_responses(dialect, CHAT_ERRORS),
                },
            }
        }
    }
    if dialect.count_paths:
        paths[dialect.count_paths[0]] = {
            "post": {
                "operationId": doc.count_operation_id,
                "summary": "Token count (an estimate; Kiro has no tokenizer endpoint)",
                "requestBody": body,
                "responses": {
                    "200": _json(doc.count_schema, "The estimated input tokens"),
                    **_error_responses(dialect, (*KEYED_ERRORS, InvalidRequest, RequestTooLarge, NotFound)),
                },
            }
        }
    for route in dialect.extra_routes:
        names = re.findall(r"{(\w+)}", route.path)
        paths.setdefault(route.path, {})[route.method.lower()] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": [{"name": n, "in": "path", "required": True, "schema": STRING} for n in names],
            "responses": {
                "200": _json(route.response_schema, route.summary),
                **_error_responses(dialect, (*KEYED_ERRORS, NotFound)),
            },
        }
    return paths


def _paths() -> dict[str, Schema]:
    dialects: dict[str, Schema] = {}
    for dialect in DIALECTS:
        dialects.update(_dialect_paths(dialect))
    return {
        **dialects,
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "summary": "Models (Anthropic's format with an anthropic-version header)",
                "responses": {
                    "200": _json("ModelListResponse", "The models"),
                    **_error_responses(DEFAULT, KEYED_ERRORS),
                },
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and credential state; no key needed, no secret shown",
                "security": PUBLIC,
                "responses": {
                    "200": _json("HealthResponse", "HealthResponse"),
                    **_error_responses(DEFAULT, BASE_ERRORS),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Counters and latencies (JSON, or Prometheus text with ?format=prometheus)",
                "responses": {
                    "200": {
                        "description": "MetricsResponse",
                        "content": {
                            "application/json": {"schema": _ref("MetricsResponse")},
                            "text/plain": {"schema": STRING},
                        },
                    },
                    **_error_responses(DEFAULT, KEYED_ERRORS),
                },
            }
        },
        "/": {
            "get": {
                "operationId": "index",
                "summary": "What this gateway is and the endpoints it serves",
                "security": PUBLIC,
                "responses": {
                    "200": _json("IndexResponse", "About"),
                    **_error_responses(DEFAULT, BASE_ERRORS),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "security": PUBLIC,
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_error_responses(DEFAULT, BASE_ERRORS),
                },
            }
        },
    }


def _merged(*parts: dict[str, Schema]) -> dict[str, Schema]:
    """One namespace of component schemas; a name used twice is a bug, not an override."""
    merged: dict[str, Schema] = {}
    for part in parts:
        for name, schema in part.items():
            if name in merged:
                raise ValueError(f"two component schemas are named {name!r}")
            merged[name] = schema
    return merged


def build_openapi(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``server_url`` (the running gateway's) goes in ``servers``."""
    schemas = _merged(
        *(_model_components(d.request_model, d.doc.schema_prefix) for d in DIALECTS),
        _response_schemas(),
    )
    server_tool_result = schemas["AnthropicServerToolResultBlock"]["properties"]["type"]
    server_tool_result.pop("type", None)
    server_tool_result["enum"] = list(SERVER_TOOL_RESULTS)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": NAME,
            "version": __version__,
            "description": "OpenAI- (chat completions, Responses) and Anthropic-compatible gateway to Kiro. "
            "Send the gateway key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


async def openapi_handler(request: web.Request) -> web.Response:
    """``GET /openapi.json`` (public: the auth middleware lists the path). Generating the schemas takes
    tens of milliseconds, so it runs in a worker thread rather than stalling every stream."""
    document = await asyncio.to_thread(build_openapi, request.app[SERVICE].url)
    return web.json_response(document)
