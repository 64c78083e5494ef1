"""Images named by URL: fetched by the gateway (5 MB cap, 10 s timeout, images only), for both APIs."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import anthropic
import openai
import pytest
from aiohttp import web

from ..harness import Gateway

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


async def pic(_: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="image/png")


async def huge(_: web.Request) -> web.Response:
    return web.Response(body=b"\0" * (5 * 1024 * 1024 + 10), content_type="image/png")


async def page(_: web.Request) -> web.Response:
    return web.Response(text="<html></html>", content_type="text/html")


@pytest.fixture
def image_host(gateway: Gateway) -> Iterator[str]:
    runners: list[web.AppRunner] = []

    async def start() -> str:
        app = web.Application()
        app.router.add_get("/pic.png", pic)
        app.router.add_get("/huge.png", huge)
        app.router.add_get("/page", page)
        runner = web.AppRunner(app)
        runners.append(runner)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield gateway.run(start())
    gateway.run(runners[0].cleanup())


def images_sent(gateway: Gateway) -> list[dict[str, object]]:
    return gateway.fake.requests[-1].body["conversationState"]["currentMessage"]["userInputMessage"]["images"]


def test_openai_image_url_is_fetched_and_inlined(gateway: Gateway, image_host: str) -> None:
    gateway.openai().chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": image_host + "/pic.png"}},
                ],
            }
        ],
    )
    assert images_sent(gateway) == [{"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}]


def test_anthropic_url_image_is_fetched_and_inlined(gateway: Gateway, image_host: str) -> None:
    gateway.anthropic().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": image_host + "/pic.png"}},
                    {"type": "text", "text": "Describe"},
                ],
            }
        ],
    )
    assert images_sent(gateway)[0]["format"] == "png"


@pytest.mark.parametrize(("path", "needle"), [("/huge.png", "larger than 5 MB"), ("/page", "text/html")])
def test_bad_image_urls_are_refused_with_a_clear_400(
    gateway: Gateway, image_host: str, path: str, needle: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=needle):
        gateway.openai().chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_host + path}}]}
            ],
        )
    with pytest.raises(anthropic.BadRequestError, match=needle):
        gateway.anthropic().messages.create(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "url", "url": image_host + path}}],
                }
            ],
        )
    assert gateway.fake.requests == []
