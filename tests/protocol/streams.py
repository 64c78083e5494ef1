"""Helpers shared by the stream-builder tests."""

from __future__ import annotations

from typing import Any

from kiro_tray.protocol.anthropic_stream import AnthropicStream
from kiro_tray.protocol.errors import UpstreamError
from kiro_tray.protocol.kiro_events import KiroEvent
from kiro_tray.protocol.openai_stream import OpenAIStream
from kiro_tray.protocol.turn import TurnParams


def turn_params(model: str, input_tokens: int, **overrides: Any) -> TurnParams:
    values: dict[str, Any] = {"model": model, "input_tokens": input_tokens}
    values.update(overrides)
    return TurnParams(**values)


def stream_parts(stream: AnthropicStream | OpenAIStream, events: list[KiroEvent]) -> list[bytes]:
    """What the relay writes: start, one write per event, finish (or fail on a GatewayError)."""
    parts = [stream.start()]
    try:
        for event in events:
            parts.append(stream.feed(event))
            if stream.done:
                break
        parts.append(stream.finish())
    except UpstreamError as err:
        parts.append(stream.fail(err))
    return [p for p in parts if p]
