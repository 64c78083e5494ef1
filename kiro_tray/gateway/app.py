"""The aiohttp application: middleware and the route table.

Middleware, outermost first:

1. ``bookkeeping``: request id, monotonic timer, the request record, and the one boundary where every
   error (ours, aiohttp's, unexpected ones) becomes the caller's API envelope.
2. ``host_guard``: while bound to loopback, a ``Host`` that is not loopback is refused (DNS rebinding).
3. ``cors``: off unless origins are listed; then only those origins, no credentials.
4. ``client_auth``: the gateway key on every route but ``/``, ``/health`` and ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import (
    Api,
    ClientAuthError,
    ForbiddenHost,
    ForbiddenOrigin,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from ..protocol.jsonsafe import clip
from ..store import ApiName
from . import routes_anthropic, routes_info, routes_openai
from .auth import authenticate
from .keys import IDENTITY, RECORD, SERVICE, STARTED

if TYPE_CHECKING:
    from .service import GatewayService

log = logging.getLogger("kiro_tray.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = frozenset({"/", "/health", "/openapi.json"})
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


def api_for(request: web.Request) -> Api:
    path = request.path
    if "/messages" in path:
        return "anthropic"
    if path.endswith("/models") and "anthropic-version" in request.headers:
        return "anthropic"
    return "openai"


def record_api(request: web.Request) -> ApiName | None:
    path = request.path.rstrip("/")
    if "/messages" in path:
        return "anthropic"
    if path.endswith(("/chat/completions", "/models")):
        return "openai"
    return None


def error_response(error: GatewayError, api: Api) -> web.Response:
    return web.json_response(error.body_for(api), status=error.status_for(api), headers=error.headers())


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


def _finish_record(
    service: GatewayService, request: web.Request, status: int, error: GatewayError | None
) -> None:
    record = request.get(RECORD)
    if record is None:
        return
    if record.status is None:
        record.status = status
    if error is not None and record.error is None:
        record.error, record.error_kind = error.message, error.kind
    record.total_ms = round((time.monotonic() - request[STARTED]) * 1000, 2)
    service.metrics.request_finished(record, record.path)
    service.store.touch(record)


@web.middleware
async def bookkeeping(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    request[STARTED] = time.monotonic()
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    api = record_api(request) if request.method != "OPTIONS" else None
    if api is not None:
        request[RECORD] = service.store.new(
            request_id=request_id,
            method=request.method,
            path=request.path,
            api=api,
            client=request.headers.get("User-Agent", "")[:120],
            headers={k: request.headers[k] for k in SAFE_HEADERS if k in request.headers},
        )
        service.metrics.request_started()
    error: GatewayError | None = None
    response: web.StreamResponse
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        # The client went away (handler cancellation) or the gateway is stopping: the record still ends.
        record = request.get(RECORD)
        if record is not None and record.error_kind is None:
            record.error_kind = "shutdown" if service.stopping else "client_disconnected"
            record.error = "The gateway stopped." if service.stopping else "The client disconnected."
        _finish_record(service, request, 499, None)
        raise
    except GatewayError as exc:
        error = exc
        response = error_response(exc, api_for(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _http_exception_error(exc, request.path)
        response = error_response(error, api_for(request))
    except Exception as exc:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        error = GatewayError(f"Internal gateway error ({type(exc).__name__}); see the Kiro Tray log.")
        response = error_response(error, api_for(request))
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    _finish_record(service, request, response.status, error)
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


def _bound_to_loopback(service: GatewayService) -> bool:
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
                return error_response(error, api_for(request))
            return await handler(request)
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, x-api-key, anthropic-version, "
            "anthropic-beta, x-stainless-*",
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
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
    service = request.app[SERVICE]
    try:
        request[IDENTITY] = authenticate(request, service.proxy_api_key)
    except ClientAuthError:
        log.info("rejected %s %s: bad or missing client key", request.method, request.path)
        raise
    record = request.get(RECORD)
    if record is not None:
        record.tenant = request[IDENTITY].tenant_id
    return await handler(request)


def build_app(service: GatewayService) -> web.Application:

    # CORS is outermost so that error responses (made by bookkeeping) carry its headers too: a listed
    # browser app must be able to read its own 401.
    middlewares: list[Any] = []
    if service.settings.cors_origin_list:
        middlewares.append(cors_middleware(service.settings.cors_origin_list))
    middlewares += [bookkeeping, host_guard, client_auth]
    app = web.Application(
        middlewares=middlewares, client_max_size=int(service.settings.max_body_mb * 1024 * 1024)
    )
    app[SERVICE] = service
    routes_info.register(app)
    routes_openai.register(app)
    routes_anthropic.register(app)
    return app
