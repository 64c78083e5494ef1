"""kiro-cli's (and the legacy Amazon Q CLI's) login in its SQLite database, ``data.sqlite3``."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from kiro_tray.protocol.errors import CredentialsError

from .base import (
    DEFAULT_REGION,
    Credential,
    Discovery,
    FileSource,
    SourceKind,
    _format_time,
    _get_str,
    _loads_object,
    _parse_time,
    chosen,
    validate_refresh_token,
)

log = logging.getLogger(__name__)

KIRO_CLI_TOKEN_KEYS = ("kirocli:social:token", "kirocli:odic:token", "codewhisperer:odic:token")
KIRO_CLI_REGISTRATION_KEYS = ("kirocli:odic:device-registration", "codewhisperer:odic:device-registration")
KIRO_CLI_PROFILE_KEY = "api.codewhisperer.profile"


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


class KiroCliSource(FileSource):
    """kiro-cli's SQLite DB: table ``auth_kv(key, value JSON)``.

    The token is the first of :data:`KIRO_CLI_TOKEN_KEYS` present (snake_case ``access_token``,
    ``refresh_token``, ``expires_at``, ``region``, ``profile_arn``; camelCase accepted); ``:social:`` is a
    social login, ``odic`` (sic) Builder ID / Identity Center, whose client comes from
    :data:`KIRO_CLI_REGISTRATION_KEYS`. A missing ARN is read from table ``state``, key
    ``api.codewhisperer.profile``, field ``arn``. ``save`` updates the row it loaded, in its own key style,
    keeping its other fields, in one transaction.
    """

    __slots__ = ("_detected", "_loaded_key")

    def __init__(self, db_path: Path, *, detected: bool = False) -> None:
        super().__init__(db_path)
        self._detected = detected
        self._loaded_key: str | None = None

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


def find_kiro_cli_db(wanted: Discovery) -> KiroCliSource | None:
    """``KIRO_CLI_DB_FILE``, when set; not opened here (its ``load`` reports what is wrong)."""
    if wanted.kiro_cli_db is None:
        return None
    return chosen(KiroCliSource(wanted.kiro_cli_db))


def detect_kiro_cli(wanted: Discovery) -> KiroCliSource | None:
    """The first kiro-cli database in its default places that holds a login."""
    environ: Mapping[str, str] | None = {} if wanted.home is not None else None
    for db_path in default_kiro_cli_db_paths(wanted.home, environ=environ):
        detected = KiroCliSource(db_path, detected=True)
        if detected.has_login():
            log.info("auto-detected kiro-cli login at %s", db_path)
            return detected
    return None
