"""``KIRO_ACCOUNTS_FILE``: several Kiro logins in one JSON list.

Each entry is an object in the credentials-file format (``refreshToken``, ``profileArn``, ``region``,
``accessToken``, ``expiresAt``) plus optional ``name``, ``enabled``, ``kiroApiKey`` (a ``ksk_`` key instead
of a refresh token), ``clientId`` / ``clientSecret`` and ``authMethod``::

    [{"name": "work", "refreshToken": "...", "profileArn": "...", "region": "us-east-1"},
     {"name": "home", "refreshToken": "..."}]

An entry is found again by its name when a rotated token is written back: the whole list is rewritten
atomically, keeping every field and every other entry as they are.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiro_tray import atomic
from kiro_tray.protocol.errors import CredentialsError

from .credentials import Credential, CredsFileSource
from .credentials.base import _format_time, read_credentials_text

#: One lock per process: two entries of the same file rotating at once must not lose a write.
_WRITE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class AccountsFileEntry:
    name: str
    enabled: bool
    source: AccountsFileSource


def read_accounts_file(path: Path) -> list[AccountsFileEntry]:
    """The entries of the file, each named (``account-N`` when it has no name). Raises
    :class:`CredentialsError` naming the file and the problem, never a value. Blocking."""
    entries = _read_list(path)
    found: list[AccountsFileEntry] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"KIRO_ACCOUNTS_FILE {path} entry {index + 1}"
        if not isinstance(entry, dict):
            raise CredentialsError(f"{where}: not a JSON object")
        name = entry.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise CredentialsError(f"{where}: name must be a non-empty string")
        name = name.strip() if isinstance(name, str) else f"account-{index + 1}"
        if name in seen:
            raise CredentialsError(f"{where}: the name {name!r} is used twice")
        seen.add(name)
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise CredentialsError(f"{where}: enabled must be true or false")
        found.append(AccountsFileEntry(name, enabled, AccountsFileSource(path, name, index)))
    return found


class AccountsFileSource(CredsFileSource):
    """One named entry of ``KIRO_ACCOUNTS_FILE``; parsed as a credentials file is."""

    __slots__ = ("_index", "_name")

    def __init__(self, path: Path, name: str, index: int) -> None:
        super().__init__(path)
        self._name = name
        self._index = index

    @property
    def description(self) -> str:
        return f"accounts file {self._path}, account {self._name!r} (KIRO_ACCOUNTS_FILE)"

    @property
    def _where(self) -> str:
        return f"KIRO_ACCOUNTS_FILE {self._path} account {self._name!r}"

    def load(self) -> Credential:
        target = self._path.resolve()
        atomic.remove_stale_temps(target.parent, target.name)
        entry = self._find(_read_list(self._path))
        key = entry.get("kiroApiKey")
        if isinstance(key, str) and key.strip():
            entry = {**entry, "refreshToken": key.strip(), "authMethod": "api_key"}
        return self._credential_from(entry)

    def save(self, credential: Credential) -> None:
        if credential.auth_kind == "api_key":
            return
        with _WRITE_LOCK:
            target = self._path.resolve()
            entries = _read_list(target)
            entry = self._find(entries)
            if credential.refresh_token is not None:
                entry["refreshToken"] = credential.refresh_token
            if "accessToken" in entry or "expiresAt" in entry:
                if credential.access_token is not None:
                    entry["accessToken"] = credential.access_token
                if credential.expires_at is not None:
                    entry["expiresAt"] = _format_time(credential.expires_at)
            if credential.profile_arn is not None:
                entry["profileArn"] = credential.profile_arn
            try:
                atomic.write_json(target, entries, keep_mode=True)
            except OSError as exc:
                raise CredentialsError(f"{self._where}: cannot be written ({exc.strerror})") from None

    def _find(self, entries: list[Any]) -> dict[str, Any]:
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("name", f"account-{index + 1}") == self._name:
                return entry
        raise CredentialsError(f"{self._where}: the account is no longer in the file")


def _read_list(path: Path) -> list[Any]:
    where = f"KIRO_ACCOUNTS_FILE {path}"
    text = read_credentials_text(path, where)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise CredentialsError(f"{where}: not a JSON list of accounts")
    return data
