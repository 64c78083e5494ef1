"""The login the app saved itself in its :class:`SecretStore` (OS keyring, or its private secrets file).

This module is the only code that knows the entry names: :class:`KeyringSource` reads and mirrors a
credential there, :func:`save_login` stores a refresh token the user pasted. Everything here blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

from kiro_tray.protocol.errors import CredentialsError
from kiro_tray.upstream.secret_store import SecretStore, SecretStoreError

from .base import (
    API_KEY_PREFIX,
    DEFAULT_REGION,
    Credential,
    Discovery,
    Source,
    SourceKind,
    _token_auth_kind,
    _token_credential,
    validate_refresh_token,
)

log = logging.getLogger(__name__)

REFRESH_TOKEN_ENTRY = "refresh_token"
PROFILE_ARN_ENTRY = "profile_arn"
REGION_ENTRY = "region"
CLIENT_ID_ENTRY = "client_id"  # Builder ID / Identity Center only
CLIENT_SECRET_ENTRY = "client_secret"  # Builder ID / Identity Center only


class KeyringSource(Source):
    """A login the app saved in its :class:`SecretStore`: a refresh token, profile ARN and region, plus the
    OIDC client for Builder ID / Identity Center. ``save`` mirrors the credential there, so it also imports
    a login from another source."""

    __slots__ = ("_store",)
    _where: ClassVar[str] = "saved login"

    def __init__(self, secret_store: SecretStore) -> None:
        self._store = secret_store

    @property
    def kind(self) -> SourceKind:
        return "keyring"

    @property
    def description(self) -> str:
        return "login saved by Kiro Tray (OS keyring or its secrets file)"

    def has_login(self) -> bool:
        """Whether a refresh token is saved. Raises :class:`SecretStoreError` when the store fails."""
        return self._store.get(REFRESH_TOKEN_ENTRY) is not None

    def load(self) -> Credential:
        try:
            token = self._store.get(REFRESH_TOKEN_ENTRY)
            profile_arn = self._store.get(PROFILE_ARN_ENTRY)
            region = self._store.get(REGION_ENTRY) or DEFAULT_REGION
            client_id = self._store.get(CLIENT_ID_ENTRY)
            client_secret = self._store.get(CLIENT_SECRET_ENTRY)
        except SecretStoreError as exc:
            raise CredentialsError(f"{self._where}: {exc}") from None
        if token is None:
            raise CredentialsError(f"{self._where}: no Kiro login is saved")
        token = validate_refresh_token(token, self._where)
        if client_id and client_secret and not token.startswith(API_KEY_PREFIX):
            return Credential(
                "idc",
                refresh_token=token,
                profile_arn=profile_arn,
                region=region,
                client_id=client_id,
                client_secret=client_secret,
            )
        kind = _token_auth_kind(token)
        return _token_credential(token, auth_kind=kind, profile_arn=profile_arn, region=region)

    def save(self, credential: Credential) -> None:
        if credential.refresh_token is None:
            raise CredentialsError(f"{self._where}: nothing to save (the credential has no refresh token)")
        idc = credential.auth_kind == "idc"
        try:
            _write_entries(
                self._store,
                {
                    REFRESH_TOKEN_ENTRY: credential.refresh_token,
                    PROFILE_ARN_ENTRY: credential.profile_arn,
                    REGION_ENTRY: credential.region,
                    CLIENT_ID_ENTRY: credential.client_id if idc else None,
                    CLIENT_SECRET_ENTRY: credential.client_secret if idc else None,
                },
            )
        except SecretStoreError as exc:
            raise CredentialsError(f"{self._where}: {exc}") from None


def save_login(
    secret_store: SecretStore, *, refresh_token: str, profile_arn: str | None, region: str | None
) -> None:
    """Save a refresh token the user pasted as the app's login, for :class:`KeyringSource` to load.

    A pasted token is a social login (an API key when it starts with ``ksk_``), so a Builder ID / Identity
    Center client saved before is deleted; so are a profile ARN and region given as None or empty.
    Raises :class:`CredentialsError` for an empty or truncated token (as :func:`validate_refresh_token`),
    before anything is written, and :class:`SecretStoreError` when the store fails."""
    token = validate_refresh_token(refresh_token, "Refresh token")
    _write_entries(
        secret_store,
        {
            REFRESH_TOKEN_ENTRY: token,
            REGION_ENTRY: region or None,
            PROFILE_ARN_ENTRY: profile_arn or None,
            CLIENT_ID_ENTRY: None,
            CLIENT_SECRET_ENTRY: None,
        },
    )


def _write_entries(store: SecretStore, values: Mapping[str, str | None]) -> None:
    """Set each entry; delete those whose value is None."""
    for name, value in values.items():
        if value is None:
            store.delete(name)
        else:
            store.set(name, value)


def find_saved_login(wanted: Discovery) -> KeyringSource | None:
    """The login saved in the app's secret store, when there is one. A store that cannot be read is
    logged and skipped, so that the next sources are still tried."""
    if wanted.secret_store is None:
        return None
    saved = KeyringSource(wanted.secret_store)
    try:
        if saved.has_login():
            log.info("Kiro credentials: login saved in %s", wanted.secret_store.backend_description)
            return saved
    except SecretStoreError as exc:
        log.warning("cannot read the saved Kiro login, looking elsewhere: %s", exc)
    return None
