"""Typed keys shared by the app, its middleware and the routes, and the route-pattern helper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..store import RequestRecord
from .auth import ClientIdentity

if TYPE_CHECKING:
    from .service import GatewayService

SERVICE: web.AppKey[GatewayService] = web.AppKey("service")
RECORD: web.RequestKey[RequestRecord] = web.RequestKey("record")
IDENTITY: web.RequestKey[ClientIdentity] = web.RequestKey("identity")
STARTED: web.RequestKey[float] = web.RequestKey("started")


def tolerant(path: str) -> str:
    """A route pattern that also matches doubled slashes (``/v1//models``), which some clients send."""
    parts = [p for p in path.split("/") if p]
    return "/{_s0:/*}" + "".join(
        part + (f"{{_s{i + 1}:/+}}" if i < len(parts) - 1 else "") for i, part in enumerate(parts)
    )
