"""A typed face for ``qasync.asyncSlot`` (the library's decorator is untyped).

Use it on methods of ``QObject`` subclasses only: on plain functions qasync cannot call it from a signal.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, cast

import qasync

P = ParamSpec("P")


def async_slot(*types: type) -> Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, Any]]:
    """``@async_slot()`` / ``@async_slot(bool)``: run the coroutine method as a task when the signal fires."""
    return cast(
        "Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, Any]]", qasync.asyncSlot(*types)
    )
