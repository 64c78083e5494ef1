"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` (also without ``/v1``; ``?beta=true`` is fine)."""

from __future__ import annotations

from aiohttp import web

from ..protocol.kiro_payload import count_anthropic_tokens
from .convert import kiro_request, read_json
from .keys import tolerant
from .relay import relay


async def messages(request: web.Request) -> web.StreamResponse:
    return await relay(request, "anthropic", await kiro_request(request, "anthropic"))


async def count_tokens(request: web.Request) -> web.Response:
    return web.json_response({"input_tokens": count_anthropic_tokens(await read_json(request))})


def register(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(tolerant(prefix + "/messages"), messages)
        app.router.add_post(tolerant(prefix + "/messages/count_tokens"), count_tokens)
