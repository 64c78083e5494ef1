"""Gateway errors as OpenAI error envelopes: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any, Final

from .errors import GatewayError

#: ``error.type`` by error kind; kinds not listed are ``invalid_request_error`` below 500, else ``api_error``.
ERROR_TYPES: Final[dict[str, str]] = {
    "credentials": "authentication_error",
    "suspended": "permission_error",
    "quota": "insufficient_quota",
    "throttled": "rate_limit_error",
    "timeout": "timeout_error",
}


def error_type(error: GatewayError) -> str:
    return ERROR_TYPES.get(error.kind) or ("invalid_request_error" if error.status < 500 else "api_error")


def error_status(error: GatewayError) -> int:
    return error.status


def error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error_type(error),
            "param": error.param,
            "code": error.code,
        }
    }
