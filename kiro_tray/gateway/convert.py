"""From an HTTP request to a :class:`KiroRequest`: read, parse, fetch remote images, convert.

Small bodies are handled inline (the common case, and the fast one); large ones are parsed and converted
in a worker thread so a 2 MB agent conversation never stalls every other stream on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp
from aiohttp import web

from ..errors import Api, InvalidRequest, UpstreamError
from ..protocol import anthropic_request, jsonsafe, openai_request
from ..protocol.jsonsafe import clip
from ..protocol.kiro_payload import ConvertOptions, KiroRequest, anthropic_to_kiro, openai_to_kiro
from .images import fetch_images
from .keys import SERVICE

#: Bodies above this many bytes are parsed and converted off the event loop.
OFFLOAD_BYTES = 256 * 1024

_CONVERTERS: dict[Api, Callable[[object, ConvertOptions], KiroRequest]] = {
    "openai": openai_to_kiro,
    "anthropic": anthropic_to_kiro,
}
_IMAGE_URLS: dict[Api, Callable[[object], list[str]]] = {
    "openai": openai_request.remote_image_urls,
    "anthropic": anthropic_request.remote_image_urls,
}


def parse_json(raw: bytes) -> object:
    """The body as JSON; a clear 400 naming the problem otherwise."""
    if not raw.strip():
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        return jsonsafe.loads(raw)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid UTF-8 ({exc.reason} at byte {exc.start}).") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except ValueError as exc:
        raise InvalidRequest(f"Request body is not acceptable JSON: {exc}.") from exc


async def read_body(request: web.Request) -> bytes:
    """The raw body; a body that cannot be decoded (a broken ``Content-Encoding``) is a clear 400."""
    try:
        return await request.read()
    except web.HTTPException:
        raise  # 413 and friends: the middleware maps them
    except (web.RequestPayloadError, aiohttp.ClientPayloadError, ValueError, OSError) as exc:
        encoding = request.headers.get("Content-Encoding", "none")
        raise InvalidRequest(
            f"Request body could not be decoded (Content-Encoding: {clip(encoding)}): {type(exc).__name__}."
        ) from exc


async def _read_json(request: web.Request) -> tuple[object, bool]:
    """The parsed body, and whether it was large enough to be parsed (and so converted) off the loop."""
    raw = await read_body(request)
    if len(raw) > OFFLOAD_BYTES:
        return await asyncio.to_thread(parse_json, raw), True
    return parse_json(raw), False


async def read_json(request: web.Request) -> object:
    return (await _read_json(request))[0]


async def kiro_request(request: web.Request, api: Api) -> KiroRequest:
    service = request.app[SERVICE]
    body, offload = await _read_json(request)
    fetched: dict[str, tuple[str, str]] = {}
    urls = _IMAGE_URLS[api](body)
    if urls:
        if service.session is None:
            raise UpstreamError("The gateway is not running.")
        fetched = await fetch_images(service.session, urls)
    options = ConvertOptions(
        payload_budget_bytes=service.settings.payload_budget_bytes,
        trim_history=service.settings.trim_history,
        fetched_images=fetched,
    )
    convert = _CONVERTERS[api]
    if offload or fetched:
        return await asyncio.to_thread(convert, body, options)
    return convert(body, options)
