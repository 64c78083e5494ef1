"""Fixtures for the protocol tests: a replay server that lets the official SDKs parse our bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiohttp import web


class Replay:
    """A real HTTP server on port 0 answering every POST with the prepared SSE parts or JSON body."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.json: dict[str, Any] | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.json is not None:
            return web.json_response(self.json)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in self.parts:
            await response.write(part)
        await response.write_eof()
        return response


@pytest_asyncio.fixture
async def replay() -> AsyncIterator[Replay]:
    server = Replay()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    yield server
    await runner.cleanup()
