"""Token estimates. Kiro returns no token counts, so every figure here is an estimate and says so.

The heuristic is the one public gateways converged on (kiro-protocol.md 3.7): about four characters
per token for Latin text, one token per character for CJK and other wide scripts, images at a fixed
cost from their size. No tokenizer is downloaded at run time.
"""

from __future__ import annotations

import math
import re

#: Anthropic's rule of thumb for an image: (width * height) / 750 tokens, capped near 1,600.
IMAGE_TOKENS = 1600
#: Characters from CJK radicals on (U+2E80) count one token each.
_WIDE = re.compile("[\u2e80-\U0010ffff]")
#: Per-message overhead (role markers, separators), as the vendors' own counters add.
MESSAGE_OVERHEAD = 4


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens for ``text``; 0 for the empty string."""
    if not text:
        return 0
    wide_chars = 0 if text.isascii() else len(text) - len(_WIDE.sub("", text))
    return max(1, math.ceil((len(text) - wide_chars) / 4 + wide_chars))


def estimate_image_tokens(base64_len: int) -> int:
    """A base64 image's cost: proportional to its bytes for small images, capped like Claude's."""
    raw_bytes = base64_len * 3 // 4
    return max(85, min(IMAGE_TOKENS, raw_bytes // 750))


def tokens_from_context_usage(percentage: float, context_window: int) -> int:
    """Input tokens implied by Kiro's ``contextUsagePercentage`` for a model's window."""
    return max(0, round(percentage / 100.0 * context_window))
