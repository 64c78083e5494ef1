"""The aiohttp application: middleware and the route table.

Middleware, outermost first:

1. ``bookkeeping``: the request's :class:`~kiro_tray.gateway.exchange.Exchange` (request id, timer,
   ``RequestStarted`` ... ``RequestFinished``), and the one boundary where every error (ours, aiohttp's,
   unexpected ones) becomes the envelope of the caller's dialect.
2. ``host_guard``: while bound to loopback, a ``Host`` that is not loopback is refused (DNS rebinding).
3. ``cors``: off unless origins are listed; then only those origins, no credentials.
4. ``client_auth``: the gateway key on every route but ``/``, ``/health`` and ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..protocol.errors import (
    ForbiddenHost,
    ForbiddenOrigin,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from ..protocol.jsonsafe import clip
from . import routes_api, routes_info
from .auth import authenticate
from .dialects import Dialect, by_headers
from .exchange import Exchange
from .keys import EXCHANGE, IDENTITY, ROUTE_DIALECTS, ROUTE_LABELS, SERVICE, Gateway
from .routes_info import MODEL_ROUTES

log = logging.getLogger("kiro_tray.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = frozenset({"/", "/health", "/openapi.json"})
HEADER_CHARS = 200
PATH_CHARS = 300
REQUEST_ID_CHARS = 128
SAFE_HEADERS = (
    "user-agent",
    "content-type",
    "content-length",
    "anthropic-version",
    "anthropic-beta",
    "accept",
    "x-stainless-lang",
    "x-stainless-package-version",
    "openai-organization",
)


def dialect_for(request: web.Request) -> Dialect:
    """The dialect of the matched route; on shared and unknown routes, the one the headers point to."""
    resource = request.match_info.route.resource
    routed = request.app[ROUTE_DIALECTS].get(resource) if resource is not None else None
    return routed if routed is not None else by_headers(request.headers, request.path)


def _route_label(request: web.Request) -> tuple[str, str]:
    """``(route, api)``: the route as registered (never the raw path) and the label records use."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched", "info"
    routed = request.app[ROUTE_DIALECTS].get(resource)
    route = request.app[ROUTE_LABELS].get(resource, "unmatched")
    if routed is not None:
        return route, routed.label
    if route in MODEL_ROUTES:
        return route, by_headers(request.headers).label
    return route, "info"


def _http_exception_error(exc: web.HTTPException, path: str) -> GatewayError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RequestTooLarge(f"Request body too large: {exc.text or 'over the MAX_BODY_MB limit'}")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("Not found. See GET / for the endpoints this gateway serves.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"Method {exc.method} is not allowed on {clip(path)}; allowed: {allowed}")
    if exc.status < 500:
        return InvalidRequest(exc.text or exc.reason or "Bad request")
    return GatewayError(exc.reason or "HTTP error")


def _safe_headers(request: web.Request) -> dict[str, str]:
    return {k: clip(request.headers[k], HEADER_CHARS) for k in SAFE_HEADERS if k in request.headers}


@web.middleware
async def bookkeeping(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    route, api = _route_label(request)
    exchange = Exchange(
        request_id=clip(request.headers.get("x-request-id") or uuid.uuid4().hex, REQUEST_ID_CHARS),
        method=request.method,
        path=clip(request.path, PATH_CHARS),
        route=route,
        api=api,
        publish=service.requests.emit,
        client_address=request.remote,
    )
    request[EXCHANGE] = exchange
    if request.method == "OPTIONS":
        return await handler(request)
    exchange.begin(clip(request.headers.get("User-Agent", ""), 120), _safe_headers(request))
    error: GatewayError | None = None
    response: web.StreamResponse
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        # The client went away (handler cancellation) or the gateway is stopping: the request still ends.
        if service.stopping:
            exchange.ended("shutdown", "The gateway stopped.")
        else:
            exchange.ended("client_disconnected", "The client disconnected.")
        exchange.finish(499)
        raise
    except GatewayError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _http_exception_error(exc, request.path)
    except Exception as exc:
        log.exception("unexpected error serving %s %s", request.method, clip(request.path))
        error = GatewayError(f"Internal gateway error ({type(exc).__name__}); see the Kiro Tray log.")
    if error is not None:
        exchange.failed(error)
        response = dialect_for(request).error_response(error)
        if error.close_connection:
            response.force_close()
    if not response.prepared:
        response.headers["x-request-id"] = exchange.request_id
    exchange.finish(response.status)
    return response


def _is_loopback_host(host_header: str) -> bool:
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bound_to_loopback(service: Gateway) -> bool:
    host = service.settings.host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    if _bound_to_loopback(service) and not _is_loopback_host(request.headers.get("Host", "")):
        raise ForbiddenHost(
            "Host header is not a loopback address; refused while the gateway listens on loopback "
            "(DNS-rebinding protection)."
        )
    return await handler(request)


def cors_middleware(
    origins: tuple[str, ...],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    allowed = frozenset(origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or origin not in allowed:
            if request.method == "OPTIONS" and origin is not None:
                error = ForbiddenOrigin(f"Origin {clip(origin)} is not in CORS_ORIGINS.")
                return dialect_for(request).error_response(error)
            return await handler(request)
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, x-api-key, anthropic-version, "
            "anthropic-beta, x-stainless-*",
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Max-Age": "600",
        }
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=headers)
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    return cors


@web.middleware
async def client_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or request.method == "OPTIONS":
        return await handler(request)
    identity = authenticate(request, request.app[SERVICE].proxy_api_key)
    request[IDENTITY] = identity
    request[EXCHANGE].outcome.tenant = identity.tenant_id
    return await handler(request)


def build_app(service: Gateway) -> web.Application:
    # CORS is outermost so that error responses (made by bookkeeping) carry its headers too: a listed
    # browser app must be able to read its own 401.
    middlewares: list[Any] = []
    if service.settings.cors_origin_list:
        middlewares.append(cors_middleware(service.settings.cors_origin_list))
    middlewares += [bookkeeping, host_guard, client_auth]
    app = web.Application(
        middlewares=middlewares, client_max_size=service.settings.max_body_bytes
    )
    app[SERVICE] = service
    app[ROUTE_DIALECTS] = {}
    app[ROUTE_LABELS] = {}
    routes_info.register(app)
    routes_api.register(app)
    return app
