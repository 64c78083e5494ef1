"""Info routes: ``/`` and ``/health`` (no key), ``/metrics`` and ``/v1/models`` (key needed)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import NAME, __version__
from ..metrics import account_series
from ..protocol.models import SEED_MODELS, resolve_model
from .dialects import DIALECTS, ModelEntry, by_headers
from .keys import IDENTITY, SERVICE, add_route
from .openapi import openapi_handler

MODEL_ROUTES = ("/v1/models", "/models")
INFO_ENDPOINTS = ["GET /health", "GET /metrics", "GET /v1/usage", "GET /", "GET /openapi.json"]


def endpoints() -> dict[str, list[str]]:
    """Each dialect's endpoints, by its label, and the info routes."""
    listed = {
        d.label: [f"POST {d.paths[0]}"] + [f"POST {p}" for p in d.count_paths[:1]] + ["GET /v1/models"]
        for d in DIALECTS
    }
    return {**listed, "info": INFO_ENDPOINTS}


async def index(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response(
        {
            "name": NAME,
            "version": __version__,
            "description": "OpenAI- and Anthropic-compatible gateway to Kiro",
            "url": service.url,
            "endpoints": endpoints(),
            "auth": "Authorization: Bearer <key> or x-api-key: <key>; multi-tenant: <key>:<refresh token>",
        }
    )


async def health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    credentials = service.accounts.info()
    # An access token still to be fetched is normal: it is refreshed on the next request. Only a missing
    # or rejected login makes the gateway unable to serve.
    healthy = credentials.state not in ("missing", "invalid") and service.accounts.can_serve()
    return web.json_response(
        {
            "status": "ok" if healthy else "degraded",
            "name": NAME,
            "version": __version__,
            "uptime_s": round(time.time() - service.metrics.started_at, 3),
            "credentials": credentials.as_json(),
            "accounts": service.accounts.summary(),
            "active_streams": service.metrics.active_streams,
        }
    )


async def usage(request: web.Request) -> web.Response:
    """Every account's state and quota (a tenant sees only its own); never a secret."""
    service = request.app[SERVICE]
    return web.json_response(service.accounts.usage_report(request[IDENTITY].tenant_token))


async def metrics(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    wants_text = request.query.get("format") == "prometheus" or (
        "text/plain" in request.headers.get("Accept", "") and "json" not in request.headers.get("Accept", "")
    )
    if wants_text:
        text = service.metrics.prometheus() + account_series(service.accounts.rows())
        return web.Response(text=text, content_type="text/plain", charset="utf-8")
    return web.json_response(service.metrics.snapshot())


def _model_entries(upstream: list[dict[str, Any]]) -> list[ModelEntry]:
    """The seed models plus the account's own, each model once: Kiro's dotted ids and our dashed ones
    name the same model when they resolve to the same Kiro model id."""
    entries: list[ModelEntry] = [
        (m.id, m.display_name, m.context_window, m.max_output_tokens) for m in SEED_MODELS
    ]
    seen = {resolve_model(e[0]).kiro_model_id for e in entries}
    for model in upstream:
        model_id = model.get("modelId")
        if not isinstance(model_id, str) or not model_id:
            continue
        kiro_id = resolve_model(model_id).kiro_model_id
        if kiro_id in seen:
            continue
        seen.add(kiro_id)
        raw_limits = model.get("tokenLimits")
        limits: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else {}
        entries.append(
            (
                model_id,
                str(model.get("modelName") or model_id),
                int(limits.get("maxInputTokens") or 200_000),
                int(limits.get("maxOutputTokens") or 64_000),
            )
        )
    return entries


async def models(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    upstream = await service.accounts.models(service.client, request[IDENTITY].tenant_token)
    return web.json_response(by_headers(request.headers).model_list(_model_entries(upstream)))


def register(app: web.Application) -> None:
    # GET also answers HEAD: Claude Code probes with HEAD /.
    add_route(app, "GET", "/", index, exact=True)
    add_route(app, "GET", "/health", health, exact=True)
    add_route(app, "GET", "/metrics", metrics, exact=True)
    add_route(app, "GET", "/openapi.json", openapi_handler, exact=True)
    add_route(app, "GET", "/v1/usage", usage, exact=True)
    for path in MODEL_ROUTES:
        add_route(app, "GET", path, models)
