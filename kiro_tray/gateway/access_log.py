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
        out = event.outcome
        if out.error_kind == "client_auth":
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
        if out.model:
            parts.insert(2, f"model={out.model}" + (" stream" if out.stream else ""))
        if out.first_byte_ms is not None:
            parts.append(f"first_byte={out.first_byte_ms:.0f}ms")
        if out.input_tokens is not None or out.output_tokens is not None:
            parts.append(f"tokens={out.input_tokens or 0}/{out.output_tokens or 0}")
        if out.credits is not None:
            parts.append(f"credits={out.credits:g}")
        if out.retries:
            parts.append(f"retries={out.retries}")
        if out.account:
            parts.append(f"account={out.account}")
        if out.error_kind:
            parts.append(f"error={out.error_kind}: {out.error or ''}")
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
