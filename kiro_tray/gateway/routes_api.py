"""The client APIs' routes, one set per dialect: a turn (``/v1/chat/completions``, ``/v1/messages``, ...)
and, where the API has it, a token count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..protocol.conversation import estimate_request_tokens
from .convert import kiro_request, off_loop, parsed_request
from .dialects import DIALECTS, Dialect
from .keys import add_route
from .relay import relay

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def turn_handler(dialect: Dialect) -> Handler:
    async def turn(request: web.Request) -> web.StreamResponse:
        return await relay(request, dialect, await kiro_request(request, dialect))

    return turn


def count_handler(dialect: Dialect) -> Handler:
    async def count_tokens(request: web.Request) -> web.StreamResponse:
        """Validates like a turn and estimates its input tokens (large bodies off the loop)."""
        parsed, offload = await parsed_request(request, dialect)
        tokens = await off_loop(offload, estimate_request_tokens, parsed)
        return web.json_response({"input_tokens": tokens})

    return count_tokens


def register(app: web.Application) -> None:
    for dialect in DIALECTS:
        turn = turn_handler(dialect)
        for path in dialect.paths:
            add_route(app, "POST", path, turn, dialect)
        count = count_handler(dialect)
        for path in dialect.count_paths:
            add_route(app, "POST", path, count, dialect)
