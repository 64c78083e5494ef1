"""A JSON credentials file: this gateway's ``KIRO_CREDS_FILE``, in the seed's or the Kiro IDE's shape."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from kiro_tray import atomic
from kiro_tray.protocol.errors import CredentialsError

from .base import (
    DEFAULT_REGION,
    AuthKind,
    Credential,
    Discovery,
    FileSource,
    SourceKind,
    _format_time,
    _get_str,
    _parse_time,
    _read_json_object,
    _token_auth_kind,
    _token_credential,
    chosen,
    validate_refresh_token,
)

_IDC_METHODS = frozenset({"idc", "builder-id", "builderid", "iam", "enterprise"})
_IDC_PROVIDERS = frozenset({"builderid", "enterprise"})
_API_KEY_METHODS = frozenset({"api_key", "apikey"})


class CredsFileSource(FileSource):
    """A JSON credentials file, in either shape:

    - the seed's: ``{"refreshToken", "profileArn", "region"}``;
    - the Kiro IDE's: ``accessToken``, ``refreshToken``, ``expiresAt`` (ISO-8601), ``region``,
      ``profileArn``, ``authMethod`` (``social`` / ``IdC``), ``provider``, and for IdC ``clientIdHash``
      naming a sibling ``<clientIdHash>.json`` with ``clientId``/``clientSecret`` (or those inline).

    ``save`` rewrites the file atomically (:mod:`kiro_tray.atomic`) in the shape it already has, keeping
    every other field and the file's mode (0600 when it has to create it); ``load`` removes temp files a
    killed write left beside it.
    """

    _kind: ClassVar[SourceKind] = "creds_file"
    __slots__ = ()

    @property
    def kind(self) -> SourceKind:
        return self._kind

    @property
    def description(self) -> str:
        return f"credentials file {self._path} (KIRO_CREDS_FILE)"

    @property
    def _where(self) -> str:
        return f"KIRO_CREDS_FILE {self._path}"

    def load(self) -> Credential:
        target = self._path.resolve()
        atomic.remove_stale_temps(target.parent, target.name)  # rotated tokens a killed write left
        data = _read_json_object(self._path, self._where)
        return self._credential_from(data)

    def save(self, credential: Credential) -> None:
        if credential.auth_kind == "api_key":
            return  # an API key never rotates
        target = self._path.resolve()  # through a symlink, rewrite the file it points at
        data = _read_json_object(target, self._where) if target.exists() else {}
        if credential.refresh_token is not None:
            data["refreshToken"] = credential.refresh_token
        if "accessToken" in data or "expiresAt" in data:  # the IDE's shape carries the access token
            if credential.access_token is not None:
                data["accessToken"] = credential.access_token
            if credential.expires_at is not None:
                data["expiresAt"] = _format_time(credential.expires_at)
        if credential.profile_arn is not None:
            data["profileArn"] = credential.profile_arn
        try:
            atomic.write_json(target, data, keep_mode=True)
        except OSError as exc:
            raise CredentialsError(f"{self._where}: cannot be written ({exc.strerror})") from None

    def _credential_from(self, data: Mapping[str, Any]) -> Credential:
        where = self._where
        token = _get_str(data, where, "refreshToken")
        if token is None:
            raise CredentialsError(f"{where}: no refreshToken")
        token = validate_refresh_token(token, where)
        region = _get_str(data, where, "region") or DEFAULT_REGION
        profile_arn = _get_str(data, where, "profileArn")
        auth_kind = self._auth_kind(data, token)
        if auth_kind != "idc":
            return _token_credential(
                token,
                auth_kind=auth_kind,
                profile_arn=profile_arn,
                region=region,
                access_token=_get_str(data, where, "accessToken"),
                expires_at=_parse_time(data.get("expiresAt")),
            )
        client_id = _get_str(data, where, "clientId")
        client_secret = _get_str(data, where, "clientSecret")
        if client_id is None or client_secret is None:
            client_id, client_secret = self._registration(data)
        return Credential(
            "idc",
            refresh_token=token,
            access_token=_get_str(data, where, "accessToken"),
            expires_at=_parse_time(data.get("expiresAt")),
            profile_arn=profile_arn,
            region=region,
            client_id=client_id,
            client_secret=client_secret,
        )

    def _auth_kind(self, data: Mapping[str, Any], token: str) -> AuthKind:
        method = _get_str(data, self._where, "authMethod")
        if method is not None:
            lowered = method.lower()
            if lowered == "social":
                return "social"
            if lowered in _IDC_METHODS:
                return "idc"
            if lowered in _API_KEY_METHODS:
                return "api_key"
            raise CredentialsError(
                f"{self._where}: unknown authMethod {method!r} (expected social, IdC, builder-id or api_key)"
            )
        provider = (_get_str(data, self._where, "provider") or "").lower()
        if provider in _IDC_PROVIDERS or "clientIdHash" in data or "clientId" in data:
            return "idc"
        return _token_auth_kind(token)

    def _registration(self, data: Mapping[str, Any]) -> tuple[str, str]:
        """``clientId``/``clientSecret`` from the sibling ``<clientIdHash>.json``."""
        where = self._where
        client_hash = _get_str(data, where, "clientIdHash")
        if client_hash is None:
            raise CredentialsError(
                f"{where}: a Builder ID / Identity Center login needs clientId and clientSecret "
                "(inline or through clientIdHash)"
            )
        if Path(client_hash).name != client_hash or client_hash.startswith("."):
            raise CredentialsError(f"{where}: clientIdHash is not a plain file name")
        reg_path = self._path.parent / f"{client_hash}.json"
        reg_where = f"{where}: client registration {reg_path}"
        registration = _read_json_object(reg_path, reg_where)
        client_id = _get_str(registration, reg_where, "clientId")
        client_secret = _get_str(registration, reg_where, "clientSecret")
        if client_id is None or client_secret is None:
            raise CredentialsError(f"{reg_where}: no clientId/clientSecret")
        return client_id, client_secret


def find_creds_file(wanted: Discovery) -> CredsFileSource | None:
    """``KIRO_CREDS_FILE``, when set; not opened here (its ``load`` reports what is wrong)."""
    if wanted.creds_file is None:
        return None
    return chosen(CredsFileSource(wanted.creds_file))
