"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` (also without ``/v1``; ``?beta=true`` is fine)."""

from __future__ import annotations

from aiohttp import web

from ..protocol.kiro_payload import ConvertOptions, anthropic_to_kiro, count_anthropic_tokens
from .app import SERVICE, tolerant
from .relay import read_json, relay


async def messages(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    body = await read_json(request)
    options = ConvertOptions(
        payload_budget_bytes=service.settings.payload_budget_bytes,
        trim_history=service.settings.trim_history,
    )
    return await relay(request, "anthropic", anthropic_to_kiro(body, options))


async def count_tokens(request: web.Request) -> web.Response:
    body = await read_json(request)
    return web.json_response({"input_tokens": count_anthropic_tokens(body)})


def register(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(tolerant(prefix + "/messages"), messages)
        app.router.add_post(tolerant(prefix + "/messages/count_tokens"), count_tokens)
