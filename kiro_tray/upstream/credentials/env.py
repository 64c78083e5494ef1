"""Tokens handed over by the caller, kept in memory only: :class:`EnvSource` (``REFRESH_TOKEN``) and
:class:`TenantSource` (multi-tenant mode)."""

from __future__ import annotations

from typing import ClassVar

from .base import (
    DEFAULT_REGION,
    Credential,
    Discovery,
    Source,
    SourceKind,
    _token_auth_kind,
    _token_credential,
    chosen,
    validate_refresh_token,
)


class _MemorySource(Source):
    """A token handed over by the caller; a rotated token is kept in memory only."""

    _kind: ClassVar[SourceKind]
    _label: ClassVar[str]
    __slots__ = ("_credential", "_profile_arn", "_region", "_token")

    def __init__(
        self, refresh_token: str, profile_arn: str | None = None, region: str = DEFAULT_REGION
    ) -> None:
        self._token = refresh_token
        self._profile_arn = profile_arn or None
        self._region = region or DEFAULT_REGION
        self._credential: Credential | None = None

    @property
    def kind(self) -> SourceKind:
        return self._kind

    @property
    def description(self) -> str:
        return self._label

    def load(self) -> Credential:
        if self._credential is None:
            token = validate_refresh_token(self._token, self._label)
            self._credential = _token_credential(
                token, auth_kind=_token_auth_kind(token), profile_arn=self._profile_arn, region=self._region
            )
        return self._credential

    def save(self, credential: Credential) -> None:
        self._credential = credential


class EnvSource(_MemorySource):
    """``REFRESH_TOKEN`` / ``PROFILE_ARN`` / ``KIRO_REGION`` as resolved by the settings (env, ``.env``,
    CLI): the caller passes the values. Social, or ``api_key`` for a ``ksk_`` key."""

    _kind = "env"
    _label = "REFRESH_TOKEN setting"
    __slots__ = ()


class TenantSource(_MemorySource):
    """Multi-tenant mode: the refresh token a client sent as its key. Social (``api_key`` for ``ksk_``)."""

    _kind = "tenant"
    _label = "tenant refresh token"
    __slots__ = ()


def find_env(wanted: Discovery) -> EnvSource | None:
    """``REFRESH_TOKEN`` wins over every other source when it is set."""
    if not wanted.refresh_token:
        return None
    return chosen(EnvSource(wanted.refresh_token, wanted.profile_arn, wanted.region))
