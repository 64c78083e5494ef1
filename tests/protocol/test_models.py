"""Model-name normalisation and limits (kiro-protocol.md 2.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_tray.protocol.models import (
    SEED_MODELS,
    context_window,
    is_slow_model,
    max_output_tokens,
    normalize_model_name,
    resolve_model,
)


@pytest.mark.parametrize(
    ("client_name", "kiro_id"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("Claude-Sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5[1m]", "claude-sonnet-4.5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4", "claude-sonnet-4"),
        ("claude-opus-4-5", "claude-opus-4.5"),
        ("claude-opus-4-5-20251101", "claude-opus-4.5"),
        ("claude-haiku-4-5", "claude-haiku-4.5"),
        ("claude-haiku-4-5-latest", "claude-haiku-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("claude-3-7-sonnet-20250219", "CLAUDE_3_7_SONNET_20250219_V1_0"),
        ("claude-3-7-sonnet", "CLAUDE_3_7_SONNET_20250219_V1_0"),
        ("claude-3.7-sonnet", "CLAUDE_3_7_SONNET_20250219_V1_0"),
        ("claude-4.5-opus-high", "claude-opus-4.5"),
        ("claude-4-sonnet", "claude-sonnet-4"),
        ("claude-opus-4-6", "claude-opus-4.6"),
        ("auto-kiro", "auto"),
        ("auto", "auto"),
        ("deepseek-3.2", "deepseek-3.2"),
        ("qwen3-coder-next", "qwen3-coder-next"),
        ("gpt-5.6-sol", "gpt-5.6-sol"),
    ],
)
def test_client_names_map_to_kiro_ids(client_name: str, kiro_id: str) -> None:
    assert resolve_model(client_name).kiro_model_id == kiro_id


def test_the_seed_models_have_kiro_ids_and_limits() -> None:
    ids = {m.id: resolve_model(m.id).kiro_model_id for m in SEED_MODELS}
    assert ids == {
        "claude-opus-4-5": "claude-opus-4.5",
        "claude-sonnet-4-5": "claude-sonnet-4.5",
        "claude-sonnet-4": "claude-sonnet-4",
        "claude-haiku-4-5": "claude-haiku-4.5",
        "claude-3-7-sonnet-20250219": "CLAUDE_3_7_SONNET_20250219_V1_0",
    }
    for model in SEED_MODELS:
        assert model.display_name and model.description
        assert model.context_window == context_window(model.id) == 200_000
        assert model.max_output_tokens == max_output_tokens(model.id)


def test_thinking_suffix_turns_thinking_on_and_is_stripped() -> None:
    resolved = resolve_model("claude-sonnet-4-5-20250929-thinking")
    assert resolved.kiro_model_id == "claude-sonnet-4.5"
    assert resolved.thinking
    assert not resolve_model("claude-sonnet-4-5").thinking


def test_normalize_returns_the_dotted_name_for_claude_3() -> None:
    assert normalize_model_name("claude-3-5-haiku-20241022") == ("claude-3.5-haiku", False)


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("claude-sonnet-4-5", 200_000),
        ("claude-haiku-4-5", 200_000),
        ("claude-sonnet-4-6", 1_000_000),
        ("claude-opus-4.6", 1_000_000),
        ("claude-opus-4-7-20260101", 1_000_000),
        ("claude-opus-5", 1_000_000),
        ("claude-haiku-4-6", 200_000),
        ("claude-sonnet-4-10", 1_000_000),
        ("some-other-model", 200_000),
    ],
)
def test_context_window(model: str, window: int) -> None:
    assert context_window(model) == window


def test_max_output_tokens_defaults_for_unknown_models() -> None:
    assert max_output_tokens("mystery") == 64_000
    assert max_output_tokens("claude-sonnet-4-5-20250929") == 64_000


def test_opus_models_are_slow() -> None:
    assert is_slow_model("claude-opus-4-5")
    assert is_slow_model("Claude-4.5-OPUS-high")
    assert not is_slow_model("claude-sonnet-4-5")


BASES = st.sampled_from(
    [
        "claude-sonnet-4-5",
        "claude-opus-4.6",
        "claude-3-7-sonnet",
        "claude-4.5-opus",
        "claude-haiku-4-5",
        "glm-5",
    ]
)


@given(
    BASES,
    st.sampled_from(["", "-20250929", "-latest"]),
    st.booleans(),
    st.sampled_from(["", "[1m]"]),
    st.booleans(),
)
def test_decorations_do_not_change_the_model(
    base: str, date: str, thinking: bool, context: str, upper: bool
) -> None:
    name = f"{base}{date}{'-thinking' if thinking else ''}{context}"
    normalized, asked = normalize_model_name(name.upper() if upper else name)
    assert (normalized, asked) == (normalize_model_name(base)[0], thinking)


@given(st.text(max_size=40))
def test_any_name_normalises_without_error(name: str) -> None:
    normalized, _ = normalize_model_name(name)
    assert normalized == normalized.lower()
