"""The gateway's error tree: what went wrong, independent of the client API that hears about it.

::

    GatewayError                      500  internal      (base; unexpected failures)
    ├── InvalidRequest                400  invalid_request (bad body: names the field in ``param``)
    │   ├── UnreadableBody            400  the body cannot be decoded (closes the connection)
    │   ├── ContextTooLong            400  context_too_long (does not fit: ``tokens`` > ``maximum``)
    │   └── ImproperlyFormed          400  Kiro's opaque "Improperly formed request"
    ├── RequestTooLarge               413  the body is over MAX_BODY_MB
    ├── ClientAuthError               401  the caller's gateway key is missing or wrong
    ├── ForbiddenHost                 403  DNS-rebinding guard
    │   └── ForbiddenOrigin           403  a CORS preflight from an origin that is not listed
    ├── NotFound                      404
    │   ├── InvalidModel              404  the model does not exist or the plan lacks it
    │   └── MethodNotAllowed          405
    ├── CredentialsError              401  the Kiro login is missing or dead
    ├── AccountSuspended              403
    ├── QuotaExhausted                429  the monthly quota is used up (clients must not retry)
    ├── RateLimited                   429  throttled after retries (always with Retry-After)
    ├── UpstreamError                 502  Kiro 5xx or a broken stream, after retries
    │   └── UpstreamOverloaded        502  Kiro is overloaded (Anthropic's dialect answers 529)
    │       └── CapacityExhausted     503  no capacity for the model now (Anthropic: 529)
    └── UpstreamTimeout               504

Each client API's dialect renders these as its own envelope (``openai_errors``, ``anthropic_errors``):
the ``kind`` names the error for them, for the request record and for ``/metrics``.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str | None] = None
    kind: ClassVar[str] = "internal"
    #: The connection cannot serve another request after this error (its body could not be read).
    close_connection: ClassVar[bool] = False

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request"


class UnreadableBody(InvalidRequest):
    """The body could not be decoded (a broken ``Content-Encoding``): the answer closes the connection, as
    the rest of the body cannot be skipped reliably."""

    close_connection = True


class ContextTooLong(InvalidRequest):
    """The conversation does not fit: about ``tokens`` against a window of ``maximum`` (when known)."""

    code = "context_length_exceeded"
    kind = "context_too_long"

    def __init__(
        self,
        message: str,
        *,
        tokens: int | None = None,
        maximum: int | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.tokens = tokens
        self.maximum = maximum

    def sized(self, tokens: int, maximum: int) -> ContextTooLong:
        """This error with the sizes filled in where the raiser did not know them. Kiro said it does not
        fit, so the count is reported as at least one token over the window."""
        if self.tokens is not None and self.maximum is not None:
            return self
        over = max(tokens, maximum + 1)
        sized = ContextTooLong(self.message, tokens=over, maximum=maximum, param=self.param)
        sized.__cause__ = self.__cause__
        return sized


class ImproperlyFormed(InvalidRequest):
    code = "improperly_formed_request"
    kind = "improperly_formed"


class RequestTooLarge(GatewayError):
    status = 413
    code = "request_too_large"
    kind = "request_too_large"


class ClientAuthError(GatewayError):
    status = 401
    code = "invalid_api_key"
    kind = "client_auth"


class ForbiddenHost(GatewayError):
    status = 403
    code = "forbidden_host"
    kind = "forbidden_host"


class ForbiddenOrigin(ForbiddenHost):
    code = "forbidden_origin"
    kind = "forbidden_origin"


class NotFound(GatewayError):
    status = 404
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
    code = "kiro_login_required"
    kind = "credentials"


class AccountSuspended(GatewayError):
    status = 403
    code = "account_suspended"
    kind = "suspended"


class QuotaExhausted(GatewayError):
    status = 429
    code = "insufficient_quota"
    kind = "quota"

    def headers(self) -> dict[str, str]:
        # Retrying cannot help until the quota resets: both SDKs and Claude Code honour this header.
        return {"x-should-retry": "false"}


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    kind = "throttled"
    #: Said when Kiro gave no Retry-After of its own: a 429 always tells the client when to come back.
    default_retry_after = 10.0

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after or self.default_retry_after)))}


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"
    kind = "upstream"


class UpstreamOverloaded(UpstreamError):
    code = "upstream_overloaded"
    kind = "overloaded"


class CapacityExhausted(UpstreamOverloaded):
    """Kiro has no capacity for the model right now (no account's fault): 503, or 529 for Anthropic."""

    status = 503
    code = "insufficient_model_capacity"
    kind = "capacity"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "timeout"
    kind = "timeout"


def copy_with_message(error: GatewayError, message: str) -> GatewayError:
    """``error`` again with another message (same class, field and retry hint)."""
    if isinstance(error, ContextTooLong):
        return ContextTooLong(message, tokens=error.tokens, maximum=error.maximum, param=error.param)
    return type(error)(message, param=error.param, retry_after=error.retry_after)
