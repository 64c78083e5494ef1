"""The client APIs' routes, one set per dialect: a turn (``/v1/chat/completions``, ``/v1/messages``,
``/v1/responses``), where the API has it a token count, and the dialect's own extra routes (stored
responses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..protocol.conversation import estimate_request_tokens
from .convert import kiro_request, off_loop, parsed_request
from .dialects import DIALECTS, Dialect
from .keys import SERVICE, add_route
from .relay import relay

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def turn_handler(dialect: Dialect) -> Handler:
    async def turn(request: web.Request) -> web.StreamResponse:
        active, _ = dialect.bound(request)
        return await relay(request, active, await kiro_request(request, active))

    return turn


def count_handler(dialect: Dialect) -> Handler:
    async def count_tokens(request: web.Request) -> web.StreamResponse:
        """Validates like a turn and estimates its input tokens (large bodies off the loop)."""
        active, _ = dialect.bound(request)
        parsed, offload = await parsed_request(request, active)
        tokens = await off_loop(offload, estimate_request_tokens, parsed)
        return web.json_response(dialect.count_body(tokens))

    return count_tokens


def register(app: web.Application) -> None:
    for dialect in DIALECTS:
        if dialect.install is not None:
            dialect.install(app, app[SERVICE].settings)
        turn = turn_handler(dialect)
        for path in dialect.paths:
            add_route(app, "POST", path, turn, dialect)
        count = count_handler(dialect)
        for path in dialect.count_paths:
            add_route(app, "POST", path, count, dialect)
        for route in dialect.extra_routes:
            add_route(app, route.method, route.path, route.handler, dialect)
