"""Info routes: ``/`` and ``/health`` (no key), ``/metrics`` and ``/v1/models`` (key needed)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import NAME, __version__
from ..protocol.models import SEED_MODELS
from .keys import IDENTITY, SERVICE, tolerant
from .openapi import openapi_handler

ENDPOINTS = {
    "openai": ["POST /v1/chat/completions", "GET /v1/models"],
    "anthropic": ["POST /v1/messages", "POST /v1/messages/count_tokens", "GET /v1/models"],
    "info": ["GET /health", "GET /metrics", "GET /", "GET /openapi.json"],
}
#: A fixed date for the built-in models' ``created`` fields (Kiro does not report one).
MODELS_CREATED = 1_735_689_600  # 2025-01-01


async def index(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response(
        {
            "name": NAME,
            "version": __version__,
            "description": "OpenAI- and Anthropic-compatible gateway to Kiro",
            "url": service.url,
            "endpoints": ENDPOINTS,
            "auth": "Authorization: Bearer <key> or x-api-key: <key>; multi-tenant: <key>:<refresh token>",
        }
    )


async def health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    credentials = service.credentials_info()
    # An expired access token is normal: it is refreshed on the next request. Only a missing or
    # rejected login makes the gateway unable to serve.
    healthy = credentials["state"] not in ("missing", "invalid")
    return web.json_response(
        {
            "status": "ok" if healthy else "degraded",
            "name": NAME,
            "version": __version__,
            "uptime_s": round(time.time() - service.metrics.started_at, 3),
            "credentials": credentials,
            "active_streams": service.metrics.active_streams,
        }
    )


async def metrics(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    wants_text = request.query.get("format") == "prometheus" or (
        "text/plain" in request.headers.get("Accept", "") and "json" not in request.headers.get("Accept", "")
    )
    if wants_text:
        return web.Response(text=service.metrics.prometheus(), content_type="text/plain", charset="utf-8")
    return web.json_response(service.metrics.snapshot())


def _model_entries(upstream: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
    """(id, display name, context window, max output) for the seed models plus the account's own."""
    entries = [(m.id, m.display_name, m.context_window, m.max_output_tokens) for m in SEED_MODELS]
    seen = {e[0] for e in entries}
    for model in upstream:
        model_id = model.get("modelId")
        if not isinstance(model_id, str) or model_id in seen:
            continue
        seen.add(model_id)
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
    identity = request[IDENTITY]
    try:
        tokens = service.token_manager_for(identity.tenant_token)
    except Exception:
        tokens = None
    entries = _model_entries(await service.models(tokens))
    if "anthropic-version" in request.headers:
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(MODELS_CREATED))
        data = [
            {"type": "model", "id": mid, "display_name": name, "created_at": created}
            for mid, name, _, _ in entries
        ]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )
    return web.json_response(
        {
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
    )


def register(app: web.Application) -> None:
    app.router.add_get("/", index)  # GET also answers HEAD (Claude Code probes with HEAD /)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_handler)
    for path in ("/v1/models", "/models"):
        app.router.add_get(tolerant(path), models)
