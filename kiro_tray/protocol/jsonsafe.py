"""JSON from strangers: strict parsing and short quotes.

``json.loads`` alone accepts ``NaN``/``Infinity`` (not JSON), raises a plain ``ValueError`` for integers
over 4,300 digits, and returns structures nested ~1,000 deep that later overflow every recursive walk.
:func:`loads` refuses all three with a ``ValueError`` whose text says what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

#: Deeper than any real request (tool schemas and inputs included) and far below the recursion limit.
MAX_DEPTH: Final = 100


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_structure(value: Any, limit: int, strings: bool) -> None:
    """``ValueError`` when ``value`` nests deeper than ``limit`` or (``strings``) a key or string holds a
    lone surrogate. Walks without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if strings and any(_LONE_SURROGATE.search(key) for key in node):
                raise ValueError(_SURROGATE_PROBLEM)
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            if strings and isinstance(node, str) and _LONE_SURROGATE.search(node):
                raise ValueError(_SURROGATE_PROBLEM)
            continue
        if depth > limit:
            raise ValueError(f"nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children)


_SURROGATE_PROBLEM = "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not Unicode"


def nesting_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests lists/objects more than ``limit`` levels."""
    try:
        _check_structure(value, limit, strings=False)
    except ValueError:
        return True
    return False


def loads(data: str | bytes) -> Any:
    """Strict JSON: ``ValueError`` for invalid JSON, ``NaN``/``Infinity``, huge integers or deep nesting."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from exc
    # Surrogates can only come from \uD8xx-\uDFxx escapes: skip the string scan when there are none.
    if isinstance(data, bytes):
        escaped = b"\\ud" in data or b"\\uD" in data
    else:
        escaped = "\\ud" in data or "\\uD" in data
    _check_structure(value, MAX_DEPTH, strings=escaped)
    return value


def clip(text: str, limit: int = 80) -> str:
    """``text`` shortened for an error message, a log line or a request record."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
