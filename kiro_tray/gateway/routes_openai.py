"""``POST /v1/chat/completions`` (and ``/chat/completions``)."""

from __future__ import annotations

from aiohttp import web

from ..errors import UpstreamError
from ..protocol.kiro_payload import ConvertOptions, openai_to_kiro
from ..protocol.openai_request import remote_image_urls
from .app import SERVICE, tolerant
from .images import fetch_images
from .relay import read_json, relay


async def chat_completions(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    body = await read_json(request)
    fetched: dict[str, tuple[str, str]] = {}
    urls = remote_image_urls(body)
    if urls:
        if service.session is None:
            raise UpstreamError("The gateway is not running.")
        fetched = await fetch_images(service.session, urls)
    options = ConvertOptions(
        payload_budget_bytes=service.settings.payload_budget_bytes,
        trim_history=service.settings.trim_history,
        fetched_images=fetched,
    )
    return await relay(request, "openai", openai_to_kiro(body, options))


def register(app: web.Application) -> None:
    for path in ("/v1/chat/completions", "/chat/completions"):
        app.router.add_post(tolerant(path), chat_completions)
