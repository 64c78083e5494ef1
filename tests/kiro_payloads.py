"""Readers for the Kiro request bodies tests inspect (what the converter built, what the fake received)."""

from __future__ import annotations

from typing import Any


def current(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``userInputMessage`` of the current turn."""
    return payload["conversationState"]["currentMessage"]["userInputMessage"]


def history(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return payload["conversationState"].get("history", [])
