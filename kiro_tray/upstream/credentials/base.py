"""What a Kiro credential is, the protocol every source implements, and the parsing the sources share.

Problems are :class:`~kiro_tray.protocol.errors.CredentialsError` naming the setting or path and the problem,
never a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from kiro_tray.protocol.errors import CredentialsError
from kiro_tray.upstream.secret_store import SecretStore

AuthKind = Literal["social", "idc", "api_key"]
SourceKind = Literal["env", "creds_file", "kiro_ide", "kiro_cli", "keyring", "tenant"]

DEFAULT_REGION = "us-east-1"
API_KEY_PREFIX = "ksk_"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Credential:
    """One Kiro login. Never logged: ``repr`` hides every secret."""

    auth_kind: AuthKind
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None  # aware, UTC
    profile_arn: str | None = None
    region: str = DEFAULT_REGION  # the auth (SSO / desktop) region
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)

    def with_tokens(
        self,
        *,
        access_token: str,
        expires_at: datetime,
        refresh_token: str | None = None,
        profile_arn: str | None = None,
    ) -> Credential:
        return replace(
            self,
            access_token=access_token,
            expires_at=expires_at,
            refresh_token=refresh_token or self.refresh_token,
            profile_arn=profile_arn or self.profile_arn,
        )

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


class CredentialStore(Protocol):
    """Where a credential lives. ``load``/``save`` block (files, sqlite, keyring): call them via
    ``asyncio.to_thread``."""

    @property
    def kind(self) -> SourceKind: ...

    @property
    def description(self) -> str:
        """Human-readable location without secrets, e.g. ``Kiro IDE login (~/.aws/sso/cache/...)``."""
        ...

    def load(self) -> Credential: ...

    def save(self, credential: Credential) -> None:
        """Persist rotated tokens atomically, keeping fields we do not know."""
        ...


class Source:
    """What the sources share: ``repr`` says where the login is, never what it holds."""

    __slots__ = ()

    @property
    def description(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


class FileSource(Source):
    """A source kept in one file."""

    __slots__ = ("_path",)

    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path


_S = TypeVar("_S", bound=Source)


def chosen(source: _S) -> _S:
    """Log the source a setting names, and hand it back (for a finder)."""
    log.info("Kiro credentials: %s", source.description)
    return source


@dataclass(frozen=True, slots=True)
class Discovery:
    """What :func:`~kiro_tray.upstream.credentials.discover` is given: the settings that carry or name a
    login. ``home`` replaces the user's home (and ignores XDG/LOCALAPPDATA) for tests."""

    refresh_token: str | None
    profile_arn: str | None
    region: str
    creds_file: Path | None
    kiro_cli_db: Path | None
    secret_store: SecretStore | None
    home: Path | None = None


Finder = Callable[[Discovery], CredentialStore | None]
"""One step of discovery: the source it finds, or None to let the next step look."""


# -- shared helpers ---------------------------------------------------------------------------------------


def validate_refresh_token(token: str, where: str) -> str:
    """The token, stripped; rejects empty and truncated (``...``, as the Kiro IDE shows it) tokens."""
    token = token.strip()
    if not token:
        raise CredentialsError(f"{where}: the refresh token is empty")
    if "..." in token or "…" in token:
        raise CredentialsError(
            f"{where}: the refresh token is truncated (it contains '...', as the Kiro IDE displays it); "
            "copy the whole token"
        )
    return token


def _token_auth_kind(token: str) -> AuthKind:
    return "api_key" if token.startswith(API_KEY_PREFIX) else "social"


def _token_credential(
    token: str,
    *,
    auth_kind: AuthKind,
    profile_arn: str | None,
    region: str,
    access_token: str | None = None,
    expires_at: datetime | None = None,
) -> Credential:
    """A credential around a long-lived secret. A ``ksk_`` API key is sent as it is, so it is both the
    stored secret (``refresh_token``) and the bearer (``access_token``) and has no expiry."""
    if auth_kind == "api_key":
        return Credential(
            "api_key", refresh_token=token, access_token=token, profile_arn=profile_arn, region=region
        )
    return Credential(
        auth_kind,
        refresh_token=token,
        access_token=access_token,
        expires_at=expires_at,
        profile_arn=profile_arn,
        region=region,
    )


def _parse_time(value: object) -> datetime | None:
    """ISO-8601 / RFC 3339 text (``Z`` allowed) or epoch seconds/milliseconds -> aware UTC; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _format_time(value: datetime) -> str:
    """``2025-01-12T23:00:00.000Z``: the Kiro IDE's style, valid RFC 3339 for kiro-cli too."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _get_str(data: Mapping[str, Any], where: str, *keys: str) -> str | None:
    """The first non-empty string among ``keys``; a present non-string value is an error."""
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise CredentialsError(f"{where}: {key} must be a string")
        if value.strip():
            return value.strip()
    return None


def read_credentials_text(path: Path, where: str) -> str:
    """A credentials file's text; :class:`CredentialsError` naming ``where`` and what is wrong otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CredentialsError(f"{where}: cannot be read ({reason})") from None


def _read_json_object(path: Path, where: str) -> dict[str, Any]:
    data = _loads_object(read_credentials_text(path, where), where)
    if data is None:
        raise CredentialsError(f"{where}: not a JSON object")
    return data


def _loads_object(text: str | bytes, where: str) -> dict[str, Any] | None:
    """Parse JSON; invalid JSON is an error (position only, never content); non-objects give None."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        position = f"line {exc.lineno} column {exc.colno}"
        raise CredentialsError(f"{where}: invalid JSON ({exc.msg} at {position})") from None
    except (UnicodeDecodeError, ValueError):
        raise CredentialsError(f"{where}: invalid JSON") from None
    return data if isinstance(data, dict) else None
