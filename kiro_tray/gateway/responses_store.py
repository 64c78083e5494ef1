"""Stored responses for the Responses API: ``store``, ``previous_response_id``, ``item_reference`` and
``GET``/``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``.

A response is kept with its own input items and the id of the response it continued, per owner (a hash
of the presented client key, tenant part included: a tenant never sees another's responses). The store
is bounded by count (``RESPONSES_STORE_MAX_ITEMS``) and bytes (``RESPONSES_STORE_MAX_MB``) and evicts the
least recently used. With ``RESPONSES_STORE_PERSIST`` it is loaded from and saved (atomically, 0600) to
``responses.json`` in the user data directory; saving happens off the loop, after changes and at shutdown.
A previous response's conversation is its ancestors' input and output items, oldest first; if one of them
has been evicted the chain is gone and the id answers 404, as at OpenAI.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from aiohttp import web

from .. import NAME, atomic
from ..protocol.errors import NotFound
from ..protocol.jsonsafe import clip
from ..protocol.responses_request import ResponsesRequest, new_id, parse_items, parse_responses_request
from ..protocol.responses_stream import ResponsesStream
from ..protocol.turn import TurnDriven, TurnParams
from ..settings import Settings
from .auth import presented_key

log = logging.getLogger("kiro_tray.gateway")

FILE_NAME = "responses.json"
FORMAT_VERSION = 1
Item = dict[str, Any]


@dataclass(slots=True)
class StoredResponse:
    owner: str
    response: Item  # the final response object
    input_items: list[Item]  # this request's own input items (each with an id)
    previous_id: str | None
    size: int

    def to_json(self) -> Item:
        return {
            "owner": self.owner,
            "response": self.response,
            "input_items": self.input_items,
            "previous_id": self.previous_id,
        }


def owner_of(request: web.Request) -> str:
    """Whose responses a request may see: a hash of the presented key (tenant part included)."""
    return hashlib.sha256((presented_key(request) or "").encode()).hexdigest()[:32]


def with_ids(items: list[Item]) -> list[Item]:
    """Input items as stored: a message gets an id (kept when the client sent one) and its content as
    parts, as OpenAI lists them."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, dict) and item.get("type", "message") == "message":
            item = {"type": "message", **item, "id": item.get("id") or new_id("msg")}
            if isinstance(item.get("content"), str):
                kind = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": kind, "text": item["content"]}]
        out.append(item)
    return out


class ResponseStore:
    """Bounded LRU of stored responses; thread-safe (large requests are converted off the loop)."""

    def __init__(self, max_items: int, max_bytes: int, path: Path | None = None) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.path = path
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._items: dict[tuple[str, str], str] = {}  # (owner, item id) -> response id
        self._bytes = 0
        self._dirty = False
        self._saving: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ResponseStore:
        path = None
        if settings.responses_store_persist:
            path = Path(platformdirs.user_data_dir(NAME, appauthor=False)) / FILE_NAME
        return cls(
            settings.responses_store_max_items, int(settings.responses_store_max_mb * 1024 * 1024), path
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    # -- reading --

    def get(self, owner: str, response_id: str) -> StoredResponse | None:
        with self._lock:
            entry = self._entries.get((owner, response_id))
            if entry is not None:
                self._entries.move_to_end((owner, response_id))
            return entry

    def conversation(self, owner: str, response_id: str) -> list[Item]:
        """The input and output items of ``response_id`` and its ancestors, oldest first; raises
        :class:`NotFound` naming ``previous_response_id`` when any of them is unknown."""
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None and current not in seen:
            seen.add(current)
            entry = self.get(owner, current)
            if entry is None:
                raise NotFound(
                    f"Previous response with id '{clip(current)}' not found.", param="previous_response_id"
                )
            chain.append(entry)
            current = entry.previous_id
        items: list[Item] = []
        for entry in reversed(chain):
            items.extend(entry.input_items)
            items.extend(entry.response.get("output") or [])
        return items

    def item(self, owner: str, item_id: str) -> Item | None:
        """A stored input or output item by its id."""
        with self._lock:
            response_id = self._items.get((owner, item_id))
            entry = self._entries.get((owner, response_id)) if response_id else None
        if entry is None:
            return None
        for item in (*entry.input_items, *(entry.response.get("output") or [])):
            if isinstance(item, dict) and item.get("id") == item_id:
                return item
        return None

    # -- writing --

    def put(self, owner: str, response: Item, input_items: list[Item], previous_id: str | None) -> None:
        entry = StoredResponse(owner, response, input_items, previous_id, 0)
        entry.size = len(json.dumps(entry.to_json(), ensure_ascii=False).encode())
        self._insert(entry)
        self._changed()

    def delete(self, owner: str, response_id: str) -> bool:
        with self._lock:
            entry = self._entries.pop((owner, response_id), None)
            if entry is not None:
                self._forget(entry)
        if entry is not None:
            self._changed()
        return entry is not None

    def _insert(self, entry: StoredResponse) -> None:
        if entry.size > self.max_bytes or self.max_items < 1:
            return
        key = (entry.owner, entry.response["id"])
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(old)
            self._entries[key] = entry
            self._bytes += entry.size
            for item_id in _item_ids(entry):
                self._items[(entry.owner, item_id)] = entry.response["id"]
            while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._forget(evicted)

    def _forget(self, entry: StoredResponse) -> None:
        self._bytes -= entry.size
        for item_id in _item_ids(entry):
            if self._items.get((entry.owner, item_id)) == entry.response["id"]:
                del self._items[(entry.owner, item_id)]

    # -- persistence --

    def _changed(self) -> None:
        if self.path is None:
            return
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # off the loop (a worker thread): the next change or shutdown saves
        if self._saving is None or self._saving.done():
            self._saving = loop.create_task(self.save())

    def snapshot(self) -> Item:
        with self._lock:
            self._dirty = False
            return {"version": FORMAT_VERSION, "responses": [e.to_json() for e in self._entries.values()]}

    async def save(self) -> None:
        """Write the store if it changed (off the loop; atomic, 0600)."""
        while self.path is not None and self._dirty:
            try:
                await asyncio.to_thread(_write, self.path, self.snapshot())
            except OSError as exc:
                log.error("could not save the stored responses to %s: %s", self.path, exc)
                return

    async def close(self) -> None:
        """Finish a save in progress, then save what changed since (at shutdown)."""
        if self._saving is not None:
            await self._saving
        await self.save()

    async def load(self) -> None:
        if self.path is None:
            return
        path = self.path
        try:
            text = await asyncio.to_thread(_read, path)
        except OSError as exc:
            log.error("could not read the stored responses from %s: %s", path, exc)
            return
        if text is None:
            return
        try:
            data = json.loads(text)
            entries = data["responses"] if data.get("version") == FORMAT_VERSION else []
            for raw in entries:
                entry = StoredResponse(
                    raw["owner"], raw["response"], raw["input_items"], raw["previous_id"], 0
                )
                entry.size = len(json.dumps(raw, ensure_ascii=False).encode())
                self._insert(entry)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("ignoring the unreadable stored responses in %s (%s)", path, type(exc).__name__)


def _write(path: Path, data: Item) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic.write_json(path, data)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _item_ids(entry: StoredResponse) -> Iterator[str]:
    for item in (*entry.input_items, *(entry.response.get("output") or [])):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            yield item["id"]


# --- routes ------------------------------------------------------------------------------------------

RESPONSES: web.AppKey[ResponseStore] = web.AppKey("responses_store", ResponseStore)


def _found(request: web.Request) -> tuple[ResponseStore, str, StoredResponse]:
    store = request.app[RESPONSES]
    owner = owner_of(request)
    response_id = request.match_info["response_id"]
    entry = store.get(owner, response_id)
    if entry is None:
        raise NotFound(f"Response with id '{clip(response_id)}' not found.", param="response_id")
    return store, owner, entry


async def get_response(request: web.Request) -> web.StreamResponse:
    _, _, entry = _found(request)
    return web.json_response(entry.response)


async def delete_response(request: web.Request) -> web.StreamResponse:
    store, owner, entry = _found(request)
    store.delete(owner, entry.response["id"])
    return web.json_response({"id": entry.response["id"], "object": "response.deleted", "deleted": True})


async def input_items(request: web.Request) -> web.StreamResponse:
    """The response's input items, paged like OpenAI (``limit`` 1-100, ``order``, ``after``, ``before``)."""
    _, _, entry = _found(request)
    query = request.query
    try:
        limit = max(1, min(100, int(query.get("limit", "20"))))
    except ValueError:
        limit = 20
    items = list(entry.input_items)
    if query.get("order", "desc") != "asc":
        items.reverse()
    ids = [item.get("id") for item in items]
    after, before = query.get("after"), query.get("before")
    if after in ids:
        items = items[ids.index(after) + 1 :]
        ids = ids[ids.index(after) + 1 :]
    if before in ids:
        items = items[: ids.index(before)]
    page = items[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit,
        }
    )


def install(app: web.Application, settings: Settings) -> ResponseStore:
    """Give ``app`` its response store (loaded at startup, saved at cleanup when persistent)."""
    store = app[RESPONSES] = ResponseStore.from_settings(settings)

    async def lifecycle(_: web.Application) -> Any:
        await store.load()
        yield
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    return store


# --- one turn ------------------------------------------------------------------------------------------


class ResponsesTurn:
    """The Responses dialect bound to one HTTP request: parsing resolves ``previous_response_id`` and
    ``item_reference`` from the caller's stored responses; the builder stores the finished response
    (with ``store``)."""

    def __init__(self, request: web.Request) -> None:
        self.store = request.app[RESPONSES]
        self.owner = owner_of(request)
        self.request: ResponsesRequest | None = None
        self.resolved: ResponsesRequest | None = None
        self.own_items: list[Item] = []

    def parse(self, body: object) -> ResponsesRequest:
        parsed = parse_responses_request(body)
        history: list[Item] = []
        if parsed.previous_response_id:
            history = self.store.conversation(self.owner, parsed.previous_response_id)
        found = {ref: item for ref in parsed.references() if (item := self.store.item(self.owner, ref))}
        resolved = parsed
        if history or found:
            stored = parse_items([*history, *found.values()])
            references = dict(zip(found, stored[len(history) :], strict=True))
            resolved = parsed.resolved(stored[: len(history)], references)
        raw = body.get("input") if isinstance(body, dict) else None
        self.own_items = with_ids(
            [m.model_dump(exclude_none=True) for m in parsed.input] if not isinstance(raw, list) else raw
        )
        self.request, self.resolved = parsed, resolved
        return resolved

    def builder(self, params: TurnParams, *, collect: bool = False) -> TurnDriven:
        assert self.request is not None and self.resolved is not None
        on_done = self._keep if self.request.stores else None
        return ResponsesStream(params, self.resolved.shape(), collect=collect, on_done=on_done)

    def _keep(self, response: Item) -> None:
        assert self.request is not None
        self.store.put(self.owner, response, self.own_items, self.request.previous_response_id)
