"""What the routes and middleware see of the running gateway, the typed keys they share, and the
route-pattern helper.

:class:`Gateway` is the narrow view of :class:`~kiro_tray.gateway.service.GatewayService` the app needs;
naming it here (structurally) keeps ``service -> app -> routes`` free of a cycle back to the service.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from ..events import RequestEvent
from ..metrics import Metrics
from ..settings import Settings
from ..signals import Signal
from ..upstream.kiro_client import KiroClient
from .auth import ClientIdentity

if TYPE_CHECKING:
    from .accounts import AccountsRegistry
    from .dialects import Dialect
    from .exchange import Exchange


class Gateway(Protocol):
    settings: Settings
    proxy_api_key: str
    requests: Signal[RequestEvent]
    metrics: Metrics
    stopping: bool
    ping_interval: float
    session: aiohttp.ClientSession | None
    client: KiroClient | None

    @property
    def accounts(self) -> AccountsRegistry: ...

    @property
    def url(self) -> str | None: ...

    def track_stream(self, task: asyncio.Task[Any]) -> None: ...


SERVICE: web.AppKey[Gateway] = web.AppKey("service")
ROUTE_DIALECTS: web.AppKey[dict[AbstractResource, Dialect]] = web.AppKey("route_dialects")
ROUTE_LABELS: web.AppKey[dict[AbstractResource, str]] = web.AppKey("route_labels")
EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("exchange")
IDENTITY: web.RequestKey[ClientIdentity] = web.RequestKey("identity")


def tolerant(path: str) -> str:
    """A route pattern that also matches doubled slashes (``/v1//models``), which some clients send."""
    parts = [p for p in path.split("/") if p]
    return "/{_s0:/*}" + "".join(
        part + (f"{{_s{i + 1}:/+}}" if i < len(parts) - 1 else "") for i, part in enumerate(parts)
    )


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Any,
    dialect: Dialect | None = None,
    *,
    exact: bool = False,
) -> None:
    """Register ``path`` (doubled slashes tolerated unless ``exact``; GET also answers HEAD), labelled
    ``path`` in metrics and records, and tied to ``dialect`` when it serves one."""
    pattern = path if exact else tolerant(path)
    if method == "GET":
        route = app.router.add_get(pattern, handler)
    else:
        route = app.router.add_route(method, pattern, handler)
    resource = route.resource
    assert resource is not None
    app[ROUTE_LABELS][resource] = path
    if dialect is not None:
        app[ROUTE_DIALECTS][resource] = dialect
