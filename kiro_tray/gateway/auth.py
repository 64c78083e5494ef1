"""Client authentication and multi-tenant token managers.

A client sends the gateway key as ``Authorization: Bearer KEY`` or ``x-api-key: KEY``. In multi-tenant
mode it sends ``KEY:REFRESH_TOKEN`` (split on the first colon) and gets a token manager of its own, kept
in a bounded LRU keyed by a hash of the refresh token: the token itself is never a key, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ..protocol.errors import ClientAuthError
from ..upstream.token_manager import TokenManager


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    tenant_token: str | None  # the tenant's refresh token (multi-tenant mode), else None

    @property
    def tenant_id(self) -> str | None:
        return tenant_hash(self.tenant_token)[:12] if self.tenant_token else None


def tenant_hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


def presented_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def authenticate(request: web.Request, proxy_key: str) -> ClientIdentity:
    """Check the presented key in constant time; raise :class:`ClientAuthError` when it is wrong."""
    presented = presented_key(request)
    if presented is None:
        raise ClientAuthError(
            "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>' "
            "(the key is shown in the Kiro Tray window, or printed at start-up)."
        )
    given = presented.encode("utf-8")
    key = proxy_key.encode("utf-8")
    if hmac.compare_digest(given, key):
        return ClientIdentity(None)
    # Multi-tenant: KEY:REFRESH_TOKEN. Matched on the key's own length, so a key may contain ':' itself.
    size = len(key)
    if len(given) > size and given[size : size + 1] == b":" and hmac.compare_digest(given[:size], key):
        tenant = given[size + 1 :].decode("utf-8")
        if not tenant.strip():
            raise ClientAuthError(
                "Multi-tenant key is 'KEY:REFRESH_TOKEN' but the refresh token part is empty."
            )
        return ClientIdentity(tenant)
    raise ClientAuthError("Invalid API key.")


class TenantManagers:
    """LRU of per-tenant token managers; a tenant's manager is never shared with another tenant."""

    def __init__(self, capacity: int, factory: Callable[[str], TokenManager]) -> None:
        self.capacity = capacity
        self._factory = factory
        self._managers: OrderedDict[str, TokenManager] = OrderedDict()

    def __len__(self) -> int:
        return len(self._managers)

    def get(self, refresh_token: str) -> TokenManager:
        key = tenant_hash(refresh_token)
        manager = self._managers.get(key)
        if manager is None:
            manager = self._factory(refresh_token)
            self._managers[key] = manager
            while len(self._managers) > self.capacity:
                self._managers.popitem(last=False)
        else:
            self._managers.move_to_end(key)
        return manager

    def clear(self) -> None:
        self._managers.clear()
