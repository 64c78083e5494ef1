"""Fetching remote images named by URL in OpenAI requests: 5 MB cap, 10 s timeout, images only."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from ..protocol.conversation import IMAGE_MEDIA_TYPES
from ..protocol.errors import InvalidRequest

MAX_IMAGE_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT = 10.0


async def fetch_image(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """(media type, base64) of the image at ``url``; :class:`InvalidRequest` naming the URL otherwise."""
    shown = url if len(url) <= 120 else url[:117] + "..."
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT), allow_redirects=True
        ) as resp:
            if resp.status != 200:
                raise InvalidRequest(f"Image URL {shown} answered HTTP {resp.status}.", param="image_url")
            media_type = IMAGE_MEDIA_TYPES.get(resp.content_type.lower(), "")
            if not media_type:
                raise InvalidRequest(
                    f"Image URL {shown} is {resp.content_type or 'not an image'}; "
                    "Kiro takes png, jpeg, gif, webp.",
                    param="image_url",
                )
            if resp.content_length is not None and resp.content_length > MAX_IMAGE_BYTES:
                raise InvalidRequest(f"Image at {shown} is larger than 5 MB.", param="image_url")
            data = await resp.content.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:
                raise InvalidRequest(f"Image at {shown} is larger than 5 MB.", param="image_url")
    except TimeoutError as exc:
        raise InvalidRequest(f"Image URL {shown} did not answer within 10 s.", param="image_url") from exc
    except aiohttp.ClientError as exc:
        raise InvalidRequest(
            f"Image URL {shown} could not be fetched ({type(exc).__name__}).", param="image_url"
        ) from exc
    return media_type, base64.b64encode(data).decode("ascii")


async def fetch_images(session: aiohttp.ClientSession, urls: list[str]) -> dict[str, tuple[str, str]]:
    unique = list(dict.fromkeys(urls))
    results = await asyncio.gather(*(fetch_image(session, url) for url in unique))
    return dict(zip(unique, results, strict=True))
