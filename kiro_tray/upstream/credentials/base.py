"""Kiro credentials: what a credential is, and where it comes from.

Sources are described in kiro-protocol.md 1.1; every one loads into a :class:`Credential` and knows how
to write a rotated refresh token back to where it came from:

- :class:`EnvSource` (``REFRESH_TOKEN``) and :class:`TenantSource` (multi-tenant): in memory only;
- :class:`CredsFileSource` (``KIRO_CREDS_FILE``) and :class:`KiroIdeSource` (``kiro-auth-token.json``);
- :class:`KiroCliSource` (kiro-cli's ``data.sqlite3``); :class:`KeyringSource` (the app's own store).

:func:`discover` picks one. Problems are :class:`~kiro_tray.errors.CredentialsError` naming the setting
or path and the problem, never a secret. Every ``load``/``save`` is blocking I/O: use a thread. Files are
rewritten atomically (temp file + ``os.replace``) and keep fields this code does not know.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import sys
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from kiro_tray.errors import CredentialsError
from kiro_tray.upstream.secret_store import SecretStore, SecretStoreError, atomic_write_json

AuthKind = Literal["social", "idc", "api_key"]
SourceKind = Literal["env", "creds_file", "kiro_ide", "kiro_cli", "keyring", "tenant"]


@dataclass(frozen=True, slots=True)
class Credential:
    """One Kiro login. Never logged: ``repr`` hides every secret."""

    auth_kind: AuthKind
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None  # aware, UTC
    profile_arn: str | None = None
    region: str = "us-east-1"  # the auth (SSO / desktop) region
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


log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
API_KEY_PREFIX = "ksk_"
KIRO_CLI_TOKEN_KEYS = ("kirocli:social:token", "kirocli:odic:token", "codewhisperer:odic:token")
KIRO_CLI_REGISTRATION_KEYS = ("kirocli:odic:device-registration", "codewhisperer:odic:device-registration")
KIRO_CLI_PROFILE_KEY = "api.codewhisperer.profile"

_IDC_METHODS = frozenset({"idc", "builder-id", "builderid", "iam", "enterprise"})
_IDC_PROVIDERS = frozenset({"builderid", "enterprise"})
_API_KEY_METHODS = frozenset({"api_key", "apikey"})


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


def _read_json_object(path: Path, where: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CredentialsError(f"{where}: cannot be read ({reason})") from None
    data = _loads_object(text, where)
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


# -- in-memory sources ---------------------------------------------------------------------------------


class _MemorySource:
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

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


# -- JSON files (this gateway's KIRO_CREDS_FILE, the Kiro IDE's kiro-auth-token.json) -----------------


def default_kiro_ide_token_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".aws" / "sso" / "cache" / "kiro-auth-token.json"


class CredsFileSource:
    """A JSON credentials file, in either shape:

    - the seed's: ``{"refreshToken", "profileArn", "region"}``;
    - the Kiro IDE's: ``accessToken``, ``refreshToken``, ``expiresAt`` (ISO-8601), ``region``,
      ``profileArn``, ``authMethod`` (``social`` / ``IdC``), ``provider``, and for IdC ``clientIdHash``
      naming a sibling ``<clientIdHash>.json`` with ``clientId``/``clientSecret`` (or those inline).

    ``save`` rewrites the file atomically in the shape it already has, keeping every other field and
    the file's mode (0600 when it has to create it).
    """

    _kind: ClassVar[SourceKind] = "creds_file"
    __slots__ = ("_path",)

    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    @property
    def path(self) -> Path:
        return self._path

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
        data = _read_json_object(self._path, self._where)
        return self._credential_from(data)

    def save(self, credential: Credential) -> None:
        if credential.auth_kind == "api_key":
            return  # an API key never rotates
        target = self._path.resolve()  # through a symlink, rewrite the file it points at
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode, data = 0o600, {}
        else:
            data = _read_json_object(target, self._where)
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
            atomic_write_json(target, data, mode=mode)
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


class KiroIdeSource(CredsFileSource):
    """The Kiro IDE's own login, ``~/.aws/sso/cache/kiro-auth-token.json`` (same format as above)."""

    _kind = "kiro_ide"
    __slots__ = ()

    def __init__(self, path: Path | None = None, *, home: Path | None = None) -> None:
        super().__init__(path or default_kiro_ide_token_path(home))

    @property
    def description(self) -> str:
        return f"Kiro IDE login ({self._path})"

    @property
    def _where(self) -> str:
        return f"Kiro IDE login {self._path}"


# -- kiro-cli / Amazon Q CLI SQLite -------------------------------------------------------------------


def default_kiro_cli_db_paths(
    home: Path | None = None, *, system: str | None = None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Where kiro-cli (then the legacy Amazon Q CLI) keeps ``data.sqlite3`` on this OS, best first."""
    home = home or Path.home()
    system = system or sys.platform
    env = os.environ if environ is None else environ
    if system.startswith("win"):
        local = env.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
    elif system == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else home / ".local" / "share"
    return [base / "kiro-cli" / "data.sqlite3", base / "amazon-q" / "data.sqlite3"]


class KiroCliSource:
    """kiro-cli's SQLite DB: table ``auth_kv(key, value JSON)``.

    The token is the first of :data:`KIRO_CLI_TOKEN_KEYS` present (snake_case ``access_token``,
    ``refresh_token``, ``expires_at``, ``region``, ``profile_arn``; camelCase accepted); ``:social:`` is a
    social login, ``odic`` (sic) Builder ID / Identity Center, whose client comes from
    :data:`KIRO_CLI_REGISTRATION_KEYS`. A missing ARN is read from table ``state``, key
    ``api.codewhisperer.profile``, field ``arn``. ``save`` updates the row it loaded, in its own key style,
    keeping its other fields, in one transaction.
    """

    __slots__ = ("_detected", "_loaded_key", "_path")

    def __init__(self, db_path: Path, *, detected: bool = False) -> None:
        self._path = Path(db_path)
        self._detected = detected
        self._loaded_key: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def kind(self) -> SourceKind:
        return "kiro_cli"

    @property
    def description(self) -> str:
        if self._detected:
            return f"kiro-cli login ({self._path})"
        return f"kiro-cli login ({self._path}, KIRO_CLI_DB_FILE)"

    @property
    def _where(self) -> str:
        return f"kiro-cli database {self._path}" if self._detected else f"KIRO_CLI_DB_FILE {self._path}"

    def load(self) -> Credential:
        with closing(self._connect(write=False)) as conn:
            try:
                key, token = self._find_token(conn)
                registration = self._registration(conn, key) if ":odic:" in key else None
                state_arn = self._state_profile_arn(conn)
            except sqlite3.Error as exc:
                raise CredentialsError(f"{self._where}: cannot be read ({exc})") from None
        where = f"{self._where} ({key})"
        refresh = _get_str(token, where, "refresh_token", "refreshToken")
        if refresh is None:
            raise CredentialsError(f"{where}: no refresh_token")
        refresh = validate_refresh_token(refresh, where)
        region = _get_str(token, where, "region")
        client_id = client_secret = None
        if registration is not None:
            reg_where = f"{self._where} (device registration)"
            client_id = _get_str(registration, reg_where, "client_id", "clientId")
            client_secret = _get_str(registration, reg_where, "client_secret", "clientSecret")
            if client_id is None or client_secret is None:
                raise CredentialsError(f"{reg_where}: no client_id/client_secret")
            region = region or _get_str(registration, reg_where, "region")
        self._loaded_key = key
        return Credential(
            "idc" if registration is not None else "social",
            refresh_token=refresh,
            access_token=_get_str(token, where, "access_token", "accessToken"),
            expires_at=_parse_time(token.get("expires_at", token.get("expiresAt"))),
            profile_arn=_get_str(token, where, "profile_arn", "profileArn") or state_arn,
            region=region or DEFAULT_REGION,
            client_id=client_id,
            client_secret=client_secret,
        )

    def save(self, credential: Credential) -> None:
        if credential.auth_kind == "api_key":
            return
        with closing(self._connect(write=True)) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._update_row(conn, credential)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise CredentialsError(f"{self._where}: cannot be written ({exc})") from None

    def has_login(self) -> bool:
        """Whether the DB exists and holds a token row (for auto-detection; never raises)."""
        try:
            with closing(self._connect(write=False)) as conn:
                self._find_token(conn)
        except (CredentialsError, sqlite3.Error):
            return False
        return True

    def _connect(self, *, write: bool) -> sqlite3.Connection:
        if not self._path.is_file():
            raise CredentialsError(f"{self._where}: file not found")
        uri = f"{self._path.resolve().as_uri()}?mode={'rw' if write else 'ro'}"
        try:
            return sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise CredentialsError(f"{self._where}: cannot be opened ({exc})") from None

    def _row(self, conn: sqlite3.Connection, table: str, key: str) -> str | bytes | None:
        row = conn.execute(f"SELECT value FROM {table} WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value = row[0]
        return value if isinstance(value, str | bytes) else None

    def _find_token(self, conn: sqlite3.Connection) -> tuple[str, dict[str, Any]]:
        for key in KIRO_CLI_TOKEN_KEYS:
            raw = self._row(conn, "auth_kv", key)
            if raw is None:
                continue
            token = _loads_object(raw, f"{self._where} ({key})")
            if token is None:
                raise CredentialsError(f"{self._where}: {key} is not a JSON object")
            return key, token
        raise CredentialsError(f"{self._where}: holds no kiro-cli login (run `kiro-cli login`)")

    def _registration(self, conn: sqlite3.Connection, token_key: str) -> dict[str, Any]:
        prefix = token_key.split(":", 1)[0] + ":"
        for key in sorted(KIRO_CLI_REGISTRATION_KEYS, key=lambda k: not k.startswith(prefix)):
            raw = self._row(conn, "auth_kv", key)
            if raw is not None:
                registration = _loads_object(raw, f"{self._where} ({key})")
                if registration is not None:
                    return registration
        raise CredentialsError(
            f"{self._where}: a Builder ID / Identity Center login without its device registration "
            "(run `kiro-cli login`)"
        )

    def _state_profile_arn(self, conn: sqlite3.Connection) -> str | None:
        try:
            raw = self._row(conn, "state", KIRO_CLI_PROFILE_KEY)
        except sqlite3.OperationalError:
            return None  # no state table
        if raw is None:
            return None
        try:
            profile = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        arn = profile.get("arn") if isinstance(profile, dict) else None
        return arn if isinstance(arn, str) and arn else None

    def _update_row(self, conn: sqlite3.Connection, credential: Credential) -> None:
        key = self._loaded_key or self._find_token(conn)[0]
        raw = self._row(conn, "auth_kv", key)
        if raw is None:
            raise CredentialsError(f"{self._where}: {key} is gone (did kiro-cli log out?)")
        token = _loads_object(raw, f"{self._where} ({key})")
        if token is None:
            raise CredentialsError(f"{self._where}: {key} is not a JSON object")
        snake = "refresh_token" in token or "refreshToken" not in token
        names = ("refresh_token", "access_token", "expires_at", "profile_arn")
        if not snake:
            names = ("refreshToken", "accessToken", "expiresAt", "profileArn")
        refresh_name, access_name, expires_name, arn_name = names
        if credential.refresh_token is not None:
            token[refresh_name] = credential.refresh_token
        if credential.access_token is not None:
            token[access_name] = credential.access_token
        if credential.expires_at is not None:
            token[expires_name] = _format_time(credential.expires_at)
        if credential.profile_arn is not None and arn_name in token:
            token[arn_name] = credential.profile_arn
        text = json.dumps(token)
        value: str | bytes = text.encode("utf-8") if isinstance(raw, bytes) else text
        conn.execute("UPDATE auth_kv SET value = ? WHERE key = ?", (value, key))
        self._loaded_key = key


# -- the app's own saved login ---------------------------------------------------------------------------


class KeyringSource:
    """A login the app saved in its :class:`SecretStore` (``refresh_token``, ``profile_arn``, ``region``,
    and ``client_id``/``client_secret`` for Builder ID / Identity Center). ``save`` mirrors the credential
    there, so it also imports a login from another source."""

    __slots__ = ("_store",)
    _where: ClassVar[str] = "saved login"

    def __init__(self, secret_store: SecretStore) -> None:
        self._store = secret_store

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    @property
    def kind(self) -> SourceKind:
        return "keyring"

    @property
    def description(self) -> str:
        return "login saved by Kiro Tray (OS keyring or its secrets file)"

    def has_login(self) -> bool:
        """Whether a refresh token is saved. Raises :class:`SecretStoreError` when the store fails."""
        return self._store.get("refresh_token") is not None

    def load(self) -> Credential:
        try:
            token = self._store.get("refresh_token")
            profile_arn = self._store.get("profile_arn")
            region = self._store.get("region") or DEFAULT_REGION
            client_id = self._store.get("client_id")
            client_secret = self._store.get("client_secret")
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
        values: dict[str, str | None] = {
            "refresh_token": credential.refresh_token,
            "profile_arn": credential.profile_arn,
            "region": credential.region,
            "client_id": credential.client_id if credential.auth_kind == "idc" else None,
            "client_secret": credential.client_secret if credential.auth_kind == "idc" else None,
        }
        try:
            for name, value in values.items():
                if value is None:
                    self._store.delete(name)
                else:
                    self._store.set(name, value)
        except SecretStoreError as exc:
            raise CredentialsError(f"{self._where}: {exc}") from None


# -- discovery ----------------------------------------------------------------------------------------


def discover(
    *,
    refresh_token: str | None,
    profile_arn: str | None,
    region: str,
    creds_file: Path | None,
    kiro_cli_db: Path | None,
    secret_store: SecretStore | None,
    home: Path | None = None,
) -> CredentialStore | None:
    """Pick the credential source. Precedence: ``refresh_token`` (REFRESH_TOKEN) > ``creds_file``
    (KIRO_CREDS_FILE) > the login saved in ``secret_store`` > ``kiro_cli_db`` (KIRO_CLI_DB_FILE) > the Kiro
    IDE login in ``home`` > a kiro-cli DB in its default places; None when there is nothing.

    ``profile_arn`` and ``region`` apply to ``refresh_token`` only (the others carry their own). Explicit
    files are not opened here: their ``load`` raises :class:`CredentialsError` naming the problem.
    ``home`` replaces the user's home (and ignores XDG/LOCALAPPDATA) for tests. Blocking: use a thread.
    """
    chosen = _choose(refresh_token, profile_arn, region, creds_file, kiro_cli_db, secret_store, home)
    if chosen is None:
        log.info("no Kiro credentials found (set REFRESH_TOKEN or KIRO_CREDS_FILE, or log in to Kiro)")
    return chosen


def _choose(
    refresh_token: str | None,
    profile_arn: str | None,
    region: str,
    creds_file: Path | None,
    kiro_cli_db: Path | None,
    secret_store: SecretStore | None,
    home: Path | None,
) -> CredentialStore | None:
    if refresh_token:
        env = EnvSource(refresh_token, profile_arn, region)
        log.info("Kiro credentials: %s", env.description)
        return env
    if creds_file is not None:
        creds = CredsFileSource(creds_file)
        log.info("Kiro credentials: %s", creds.description)
        return creds
    if secret_store is not None:
        saved = KeyringSource(secret_store)
        try:
            if saved.has_login():
                log.info("Kiro credentials: login saved in %s", secret_store.backend_description)
                return saved
        except SecretStoreError as exc:
            log.warning("cannot read the saved Kiro login, looking elsewhere: %s", exc)
    if kiro_cli_db is not None:
        cli = KiroCliSource(kiro_cli_db)
        log.info("Kiro credentials: %s", cli.description)
        return cli
    ide = KiroIdeSource(home=home)
    if ide.path.is_file():
        log.info("auto-detected Kiro IDE login at %s", ide.path)
        return ide
    environ: Mapping[str, str] | None = {} if home is not None else None
    for db_path in default_kiro_cli_db_paths(home, environ=environ):
        detected = KiroCliSource(db_path, detected=True)
        if detected.has_login():
            log.info("auto-detected kiro-cli login at %s", db_path)
            return detected
    return None
