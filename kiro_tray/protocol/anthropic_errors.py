"""Gateway errors as Anthropic error envelopes: ``{"type": "error", "error": {"type", "message"}}``.

Two things differ from the plain status: an overloaded Kiro is a 529 ``overloaded_error`` (clients back off
and retry it), and a conversation that does not fit says ``prompt is too long: N tokens > M maximum``, the
words Claude Code looks for before it offers to compact the conversation.
"""

from __future__ import annotations

from typing import Any, Final

from .errors import ContextTooLong, GatewayError, UpstreamOverloaded

ERROR_TYPES: Final[dict[str, str]] = {
    "request_too_large": "request_too_large",
    "client_auth": "authentication_error",
    "credentials": "authentication_error",
    "forbidden_host": "permission_error",
    "forbidden_origin": "permission_error",
    "suspended": "permission_error",
    "not_found": "not_found_error",
    "invalid_model": "not_found_error",
    "method_not_allowed": "not_found_error",
    "quota": "rate_limit_error",
    "throttled": "rate_limit_error",
    "overloaded": "overloaded_error",
    "capacity": "overloaded_error",
    "timeout": "timeout_error",
}
OVERLOADED_STATUS: Final = 529


def error_type(error: GatewayError) -> str:
    return ERROR_TYPES.get(error.kind) or ("invalid_request_error" if error.status < 500 else "api_error")


def error_status(error: GatewayError) -> int:
    return OVERLOADED_STATUS if isinstance(error, UpstreamOverloaded) else error.status


def error_message(error: GatewayError) -> str:
    if isinstance(error, ContextTooLong) and error.tokens is not None and error.maximum is not None:
        return f"prompt is too long: {error.tokens} tokens > {error.maximum} maximum. {error.message}"
    return error.message


def error_body(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error), "message": error_message(error)}}
