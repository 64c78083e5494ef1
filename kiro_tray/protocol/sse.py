"""Server-sent events encoding, shared by the OpenAI and Anthropic stream builders.

JSON is compact and keeps non-ASCII text as UTF-8 (``ensure_ascii=False``). JSON already escapes
``\\r`` and ``\\n``; the three other characters some SSE clients treat as line breaks after decoding
(U+0085, U+2028, U+2029) are escaped too, so one event is always exactly one ``data:`` line.
"""

from __future__ import annotations

import json
from typing import Any, Final

SSE_DONE: Final = b"data: [DONE]\n\n"

_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: Any) -> str:
    """Compact JSON for an SSE ``data:`` line (never contains a line break)."""
    text = _ENCODER.encode(value)
    if "\u2028" in text or "\u2029" in text or "\x85" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
    return text


def utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (from a ``\\ud800`` escape upstream) becomes ``?``, never a crash."""
    return text.encode("utf-8", errors="replace")


def sse_event(event: str | None, data: Any) -> bytes:
    """One SSE event: ``event: <event>\\ndata: <json>\\n\\n`` (no ``event:`` line when ``event`` is None)."""
    if event is None:
        return utf8(f"data: {json_text(data)}\n\n")
    return utf8(f"event: {event}\ndata: {json_text(data)}\n\n")


def sse_data(data: Any) -> bytes:
    """A ``data:``-only SSE event, as the OpenAI API streams."""
    return sse_event(None, data)
