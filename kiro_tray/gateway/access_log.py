"""The access log: one INFO line per finished request, for people troubleshooting from the log file.

It says method, path, API, model, status, first byte, total, tokens, retries and account, and the error
with its kind when the client got one, always with the request id. Never a secret: paths are clipped and
the line holds no header. Requests refused for a wrong or missing key are summarised: at most one line per
client address per minute, with how many were refused since the last line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..events import RequestEvent, RequestFinished

log = logging.getLogger("kiro_tray.access")

REFUSED_EVERY_S = 60.0
#: Addresses remembered for the refusal summary (the oldest are forgotten past this).
REFUSED_ADDRESSES = 1024


class AccessLog:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._refused: dict[str, tuple[float, int]] = {}  # address -> (last line at, refused since)

    def on_event(self, event: RequestEvent) -> None:
        if not isinstance(event, RequestFinished) or event.method == "OPTIONS":
            return
        if event.error_kind == "client_auth":
            self._refused_key(event)
            return
        if event.api == "info" and event.status < 400:
            return  # /health, /metrics, /: polled often, nothing to troubleshoot
        parts = [
            f"{event.method} {event.path}",
            f"api={event.api}",
            f"status={event.status}",
            f"total={event.total_ms:.0f}ms",
        ]
        if event.model:
            parts.insert(2, f"model={event.model}" + (" stream" if event.stream else ""))
        if event.first_byte_ms is not None:
            parts.append(f"first_byte={event.first_byte_ms:.0f}ms")
        if event.input_tokens is not None or event.output_tokens is not None:
            parts.append(f"tokens={event.input_tokens or 0}/{event.output_tokens or 0}")
        if event.credits is not None:
            parts.append(f"credits={event.credits:g}")
        if event.retries:
            parts.append(f"retries={event.retries}")
        if event.account:
            parts.append(f"account={event.account}")
        if event.error_kind:
            parts.append(f"error={event.error_kind}: {event.error or ''}")
        log.info("request %s: %s", event.request_id, " ".join(parts))

    def _refused_key(self, event: RequestFinished) -> None:
        address = event.client_address or "unknown"
        now = self._clock()
        last, count = self._refused.pop(address, (float("-inf"), 0))
        count += 1
        if now - last < REFUSED_EVERY_S:
            self._refused[address] = (last, count)
            return
        log.info(
            "refused %d request(s) from %s without a valid client key (last: %s %s, request %s)",
            count,
            address,
            event.method,
            event.path,
            event.request_id,
        )
        self._refused[address] = (now, 0)
        while len(self._refused) > REFUSED_ADDRESSES:
            self._refused.pop(next(iter(self._refused)))
