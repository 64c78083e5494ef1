"""From an HTTP request to a :class:`KiroRequest`: read, validate (the dialect's parser), fetch remote
images, convert.

Small bodies are handled inline (the common case, and the fast one); large ones are parsed and converted
in a worker thread so a 2 MB agent conversation never stalls every other stream on the loop.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from ..protocol import jsonsafe
from ..protocol.conversation import ClientRequest, stand_ins
from ..protocol.errors import InvalidRequest, RequestTooLarge, UnreadableBody, UpstreamError
from ..protocol.jsonsafe import clip
from ..protocol.kiro_payload import ConvertOptions, KiroRequest, build_kiro_request
from .dialects import Dialect
from .images import fetch_images
from .keys import SERVICE

#: Bodies above this many bytes are parsed and converted off the event loop.
OFFLOAD_BYTES = 256 * 1024

T = TypeVar("T")


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


#: Content-Encodings a body may come in, with zlib's ``wbits`` for each (``identity`` needs none).
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decoded_body(raw: bytes, encoding: str, limit: int) -> bytes:
    """``raw`` decoded from ``encoding``, at most ``limit`` bytes of it: a body that decodes to more is a
    413 however small it came (a zip bomb), one that does not decode is a 400 naming the encoding."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return raw
    wbits = _ENCODINGS.get(name)
    if wbits is None:
        raise UnreadableBody(
            f"Request body has Content-Encoding {clip(encoding)}; this gateway reads gzip, deflate or none."
        )
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(raw, limit + 1)
        if len(data) <= limit:
            data += inflater.flush()
    except zlib.error as exc:
        raise UnreadableBody(
            f"Request body could not be decoded (Content-Encoding: {clip(encoding)}): {exc}."
        ) from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise RequestTooLarge(
            f"Request body too large: over the MAX_BODY_MB limit once decoded ({clip(encoding)})."
        )
    if not inflater.eof:
        raise UnreadableBody(
            f"Request body could not be decoded (Content-Encoding: {clip(encoding)}): it is cut short."
        )
    return data


async def read_body(request: web.Request) -> bytes:
    """The raw body, decoded here (the server does not decompress: a broken or oversized encoding is a
    clear 400 or 413, and the body is always read to its end, so the connection stays usable)."""
    try:
        raw = await request.read()
    except web.HTTPException:
        raise  # 413 and friends: the middleware maps them
    except (web.RequestPayloadError, aiohttp.ClientPayloadError, ValueError, OSError) as exc:
        raise UnreadableBody(f"Request body could not be read: {type(exc).__name__}.") from exc
    encoding = request.headers.get("Content-Encoding", "")
    if not encoding:
        return raw
    limit = request.app[SERVICE].settings.max_body_bytes
    return await off_loop(len(raw) > OFFLOAD_BYTES // 8, decoded_body, raw, encoding, limit)


async def off_loop(offload: bool, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args) if offload else fn(*args)


async def parsed_request(request: web.Request, dialect: Dialect) -> tuple[ClientRequest, bool]:
    """The validated body, and whether it was large enough to be handled off the loop."""
    raw = await read_body(request)
    offload = len(raw) > OFFLOAD_BYTES
    parsed = await off_loop(offload, lambda: dialect.parse(parse_json(raw)))
    return parsed, offload


async def kiro_request(request: web.Request, dialect: Dialect) -> KiroRequest:
    """Validate, fetch remote images (only once everything else in the body is known to be fine), convert."""
    service = request.app[SERVICE]
    parsed, offload = await parsed_request(request, dialect)
    fetched: dict[str, tuple[str, str]] = {}
    urls = parsed.image_urls()
    if urls:
        await off_loop(offload, parsed.to_conversation, stand_ins(parsed))  # a bad body fails before fetching
        if service.session is None:
            raise UpstreamError("The gateway is not running.")
        fetched = await fetch_images(service.session, urls)
    options = ConvertOptions(
        payload_budget_bytes=service.settings.payload_budget_bytes,
        trim_history=service.settings.trim_history,
        fetched_images=fetched,
    )

    def convert() -> KiroRequest:
        return build_kiro_request(parsed.to_conversation(fetched), options)

    return await off_loop(offload or bool(fetched), convert)
