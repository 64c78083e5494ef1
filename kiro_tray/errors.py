"""The gateway's error tree, and the one place errors become API envelopes.

::

    GatewayError                      500 api_error            (base; unexpected failures)
    ├── InvalidRequest                400 invalid_request_error (bad body: names the field in ``param``)
    │   ├── ContextTooLong            400 context is full (Kiro CONTENT_LENGTH_EXCEEDS_THRESHOLD)
    │   └── ImproperlyFormed          400 Kiro's opaque "Improperly formed request"
    ├── RequestTooLarge               413 request_too_large
    ├── ClientAuthError               401 authentication_error / invalid_api_key (the caller's key)
    ├── ForbiddenHost                 403 permission_error (DNS-rebinding guard)
    │   └── ForbiddenOrigin           403 a CORS preflight from an origin that is not listed
    ├── NotFound                      404 not_found_error
    │   ├── InvalidModel              404 the model does not exist or the plan lacks it
    │   └── MethodNotAllowed          405
    ├── CredentialsError              401 authentication_error: Kiro login missing or dead
    ├── AccountSuspended              403 permission_error
    ├── QuotaExhausted                429 rate_limit_error: the monthly quota is used up
    ├── RateLimited                   429 rate_limit_error with Retry-After (throttled after retries)
    ├── UpstreamError                 502 api_error (Kiro 5xx or a broken stream, after retries)
    │   └── UpstreamOverloaded        502 (OpenAI) / 529 overloaded_error (Anthropic)
    └── UpstreamTimeout               504 timeout_error

``status_for(api)`` and ``*_body()`` are the only mapping; routes never build envelopes by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Api = Literal["openai", "anthropic"]


class GatewayError(Exception):
    status: ClassVar[int] = 500
    anthropic_status: ClassVar[int | None] = None
    openai_type: ClassVar[str] = "api_error"
    anthropic_type: ClassVar[str] = "api_error"
    code: ClassVar[str | None] = None
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def status_for(self, api: Api) -> int:
        if api == "anthropic" and self.anthropic_status is not None:
            return self.anthropic_status
        return self.status

    def openai_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.anthropic_type, "message": self.message}}

    def body_for(self, api: Api) -> dict[str, Any]:
        return self.openai_body() if api == "openai" else self.anthropic_body()

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(GatewayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    kind = "invalid_request"


class ContextTooLong(InvalidRequest):
    code = "context_length_exceeded"
    kind = "context_too_long"


class ImproperlyFormed(InvalidRequest):
    code = "improperly_formed_request"
    kind = "improperly_formed"


class RequestTooLarge(GatewayError):
    status = 413
    openai_type = "invalid_request_error"
    anthropic_type = "request_too_large"
    code = "request_too_large"
    kind = "request_too_large"


class ClientAuthError(GatewayError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"
    kind = "client_auth"


class ForbiddenHost(GatewayError):
    status = 403
    openai_type = "invalid_request_error"
    anthropic_type = "permission_error"
    code = "forbidden_host"
    kind = "forbidden_host"


class ForbiddenOrigin(ForbiddenHost):
    code = "forbidden_origin"
    kind = "forbidden_origin"


class NotFound(GatewayError):
    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"
    code = "not_found"
    kind = "not_found"


class InvalidModel(NotFound):
    code = "model_not_found"
    kind = "invalid_model"


class MethodNotAllowed(NotFound):
    status = 405
    code = "method_not_allowed"
    kind = "method_not_allowed"


class CredentialsError(GatewayError):
    status = 401
    openai_type = "authentication_error"
    anthropic_type = "authentication_error"
    code = "kiro_login_required"
    kind = "credentials"


class AccountSuspended(GatewayError):
    status = 403
    openai_type = "permission_error"
    anthropic_type = "permission_error"
    code = "account_suspended"
    kind = "suspended"


class QuotaExhausted(GatewayError):
    status = 429
    openai_type = "insufficient_quota"
    anthropic_type = "rate_limit_error"
    code = "insufficient_quota"
    kind = "quota"


class RateLimited(GatewayError):
    status = 429
    openai_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    kind = "throttled"
    #: Said when Kiro gave no Retry-After of its own: a 429 always tells the client when to come back.
    default_retry_after = 10.0

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after or self.default_retry_after)))}


class UpstreamError(GatewayError):
    status = 502
    openai_type = "api_error"
    anthropic_type = "api_error"
    code = "upstream_error"
    kind = "upstream"


class UpstreamOverloaded(UpstreamError):
    anthropic_status = 529
    anthropic_type = "overloaded_error"
    code = "upstream_overloaded"
    kind = "overloaded"


class UpstreamTimeout(GatewayError):
    status = 504
    openai_type = "timeout_error"
    anthropic_type = "timeout_error"
    code = "timeout"
    kind = "timeout"
