"""``POST /v1/chat/completions`` (and ``/chat/completions``)."""

from __future__ import annotations

from aiohttp import web

from .convert import kiro_request
from .keys import tolerant
from .relay import relay


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await relay(request, "openai", await kiro_request(request, "openai"))


def register(app: web.Application) -> None:
    for path in ("/v1/chat/completions", "/chat/completions"):
        app.router.add_post(tolerant(path), chat_completions)
