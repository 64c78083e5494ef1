"""JSON from strangers: strict parsing and short quotes.

``json.loads`` alone accepts ``NaN``/``Infinity`` (not JSON), raises a plain ``ValueError`` for integers
over 4,300 digits, and returns structures nested ~1,000 deep that later overflow every recursive walk.
:func:`loads` refuses all three with a ``ValueError`` whose text says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any, Final

#: Deeper than any real request (tool schemas and inputs included) and far below the recursion limit.
MAX_DEPTH: Final = 100


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def nesting_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests lists/objects more than ``limit`` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(data: str | bytes) -> Any:
    """Strict JSON: ``ValueError`` for invalid JSON, ``NaN``/``Infinity``, huge integers or deep nesting."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from exc
    if nesting_exceeds(value):
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def clip(text: str, limit: int = 80) -> str:
    """``text`` shortened for an error message, a log line or a request record."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
