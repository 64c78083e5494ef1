"""A tiny Qt-free signal: the core publishes, the UI bridge (and tests) subscribe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("kiro_tray.signals")


class Signal(Generic[T]):
    __slots__ = ("_name", "_receivers")

    def __init__(self, name: str) -> None:
        self._name = name
        self._receivers: list[Callable[[T], None]] = []

    def connect(self, receiver: Callable[[T], None]) -> None:
        if receiver not in self._receivers:
            self._receivers.append(receiver)

    def disconnect(self, receiver: Callable[[T], None]) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    def emit(self, value: T) -> None:
        for receiver in tuple(self._receivers):
            try:
                receiver(value)
            except Exception:
                # A broken subscriber must never take the gateway down; it is logged, not hidden.
                log.exception("receiver of signal %s failed", self._name)
