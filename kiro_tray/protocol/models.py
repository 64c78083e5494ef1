"""Model names: client spellings -> Kiro model ids, and the limits reported (kiro-protocol.md 2.4).

Normalisation is deliberately small and lenient ("a gateway, not a gatekeeper"): names it does not
recognise pass through unchanged and Kiro itself decides whether the account may use them.

- lower-case, trim; drop a context suffix such as ``[1m]``;
- a ``-thinking`` suffix turns thinking on and is dropped;
- drop a trailing ``-YYYYMMDD`` date or ``-latest``;
- ``claude-{family}-{major}-{minor}`` -> ``claude-{family}-{major}.{minor}`` (``claude-sonnet-4-5`` ->
  ``claude-sonnet-4.5``); Claude 3.x keeps its old order (``claude-3-7-sonnet`` -> ``claude-3.7-sonnet``);
- Cursor's inverted names lose any tier suffix (``claude-4.5-opus-high`` -> ``claude-opus-4.5``);
- ``auto-kiro`` (Cursor reserves ``auto``) -> ``auto``.

Kiro takes the dotted ids, except Claude 3.7 Sonnet, which only answers to its internal id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT_CONTEXT_WINDOW = 200_000
LARGE_CONTEXT_WINDOW = 1_000_000
DEFAULT_MAX_OUTPUT = 64_000

#: Ids Kiro does not accept in dotted form.
_INTERNAL_IDS: Mapping[str, str] = MappingProxyType({"claude-3.7-sonnet": "CLAUDE_3_7_SONNET_20250219_V1_0"})

_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")
_FAMILY_FIRST = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:[.-](\d{1,2}))?")
_VERSION_FIRST = re.compile(r"claude-(\d+)(?:[.-](\d{1,2}))?-(opus|sonnet|haiku)(?:-[a-z0-9.]+)*")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model the gateway lists in ``/v1/models`` even before Kiro's own list is known."""

    id: str
    display_name: str
    description: str
    context_window: int
    max_output_tokens: int


def _seed(model_id: str, display_name: str, description: str) -> ModelInfo:
    return ModelInfo(model_id, display_name, description, DEFAULT_CONTEXT_WINDOW, DEFAULT_MAX_OUTPUT)


SEED_MODELS: tuple[ModelInfo, ...] = (
    _seed("claude-opus-4-5", "Claude Opus 4.5", "Top tier"),
    _seed("claude-sonnet-4-5", "Claude Sonnet 4.5", "Enhanced"),
    _seed("claude-sonnet-4", "Claude Sonnet 4", "Balanced"),
    _seed("claude-haiku-4-5", "Claude Haiku 4.5", "Fast"),
    _seed("claude-3-7-sonnet-20250219", "Claude 3.7 Sonnet", "Legacy"),
)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """``name`` normalised; ``kiro_model_id`` to send; ``thinking`` if the name asked for it."""

    name: str
    kiro_model_id: str
    thinking: bool


def _dotted(major: str, minor: str | None) -> str:
    return f"{major}.{minor}" if minor else major


def normalize_model_name(name: str) -> tuple[str, bool]:
    """``(normalised name, thinking requested by a -thinking suffix)``."""
    n = _CONTEXT_SUFFIX.sub("", name.strip().lower())
    thinking = n.endswith("-thinking")
    if thinking:
        n = n.removesuffix("-thinking")
    n = _DATE_SUFFIX.sub("", n)
    if n == "auto-kiro":
        return "auto", thinking
    if m := _FAMILY_FIRST.fullmatch(n):
        family, major, minor = m.groups()
        return f"claude-{family}-{_dotted(major, minor)}", thinking
    if m := _VERSION_FIRST.fullmatch(n):
        major, minor, family = m.groups()
        version = _dotted(major, minor)
        if int(major) <= 3:
            return f"claude-{version}-{family}", thinking
        return f"claude-{family}-{version}", thinking
    return n, thinking


def resolve_model(name: str) -> ResolvedModel:
    normalized, thinking = normalize_model_name(name)
    return ResolvedModel(normalized, _INTERNAL_IDS.get(normalized, normalized), thinking)


def _family_version(model: str) -> tuple[str, tuple[int, int]] | None:
    m = _FAMILY_FIRST.fullmatch(normalize_model_name(model)[0].replace(".", "-"))
    if m is None:
        return None
    family, major, minor = m.groups()
    return family, (int(major), int(minor or 0))


def context_window(model: str) -> int:
    """200,000 tokens; 1,000,000 for Sonnet and Opus from 4.6 on (kiro-protocol.md 2.4)."""
    fv = _family_version(model)
    if fv is not None and fv[0] in ("sonnet", "opus") and fv[1] >= (4, 6):
        return LARGE_CONTEXT_WINDOW
    return DEFAULT_CONTEXT_WINDOW


def max_output_tokens(model: str) -> int:
    """The output limit reported to clients: the seed model's, else a conservative 64,000."""
    normalized = normalize_model_name(model)[0]
    for seed in SEED_MODELS:
        if normalize_model_name(seed.id)[0] == normalized:
            return seed.max_output_tokens
    return DEFAULT_MAX_OUTPUT


def is_slow_model(model: str) -> bool:
    """Opus models answer slowly; the upstream client stretches their timeouts."""
    return "opus" in model.lower()
