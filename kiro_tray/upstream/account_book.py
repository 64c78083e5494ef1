"""Accounts added in the app or with ``kiro-tray accounts add``: metadata in the config directory, secrets in
the secret store (the OS keyring, or visibly its private file).

``accounts.json`` (0600, rewritten atomically) lists ``{"id", "name", "type", "enabled", "region",
"profile_arn", "path"}`` per account; ``type`` is ``refresh_token`` or ``api_key`` (the secret is in the
store under ``account.<id>.refresh_token``, with ``.client_id`` / ``.client_secret`` for Builder ID / Identity
Center), or ``creds_file`` / ``kiro_ide`` / ``kiro_cli``: a reference to a login another program keeps and
rotates (copying it would fork its refresh-token lineage). Everything here blocks: call it in a thread.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, cast, get_args

from kiro_tray import atomic
from kiro_tray.protocol.errors import CredentialsError

from .credentials import (
    API_KEY_PREFIX,
    DEFAULT_REGION,
    Credential,
    CredentialStore,
    CredsFileSource,
    KiroCliSource,
    KiroIdeSource,
    SourceKind,
    validate_refresh_token,
)
from .credentials.kiro_cli import default_kiro_cli_db_paths
from .secret_store import SecretStore, SecretStoreError

BOOK_FILE_NAME = "accounts.json"
BookType = Literal["refresh_token", "api_key", "creds_file", "kiro_ide", "kiro_cli"]
_SECRET_FIELDS = ("refresh_token", "client_id", "client_secret")


@dataclass(frozen=True, slots=True)
class BookEntry:
    id: str
    name: str
    type: BookType
    enabled: bool = True
    region: str | None = None
    profile_arn: str | None = None
    path: str | None = None  # creds_file / kiro_cli database


class BookSource:
    """A login kept by the app: its secret in the store, rotated tokens written back there."""

    __slots__ = ("_entry", "_store")

    def __init__(self, entry: BookEntry, store: SecretStore) -> None:
        self._entry = entry
        self._store = store

    def __repr__(self) -> str:
        return f"<BookSource {self.description}>"

    @property
    def kind(self) -> SourceKind:
        return "keyring"

    @property
    def description(self) -> str:
        return f"account {self._entry.name!r} saved by Kiro Tray"

    def _secret(self, field: str) -> str | None:
        try:
            return self._store.get(f"account.{self._entry.id}.{field}")
        except SecretStoreError as exc:
            raise CredentialsError(f"{self.description}: {exc}") from None

    def load(self) -> Credential:
        token = self._secret("refresh_token")
        if token is None:
            raise CredentialsError(f"{self.description}: its secret is missing from the secret store")
        token = validate_refresh_token(token, self.description)
        entry = self._entry
        region = entry.region or DEFAULT_REGION
        if entry.type == "api_key" or token.startswith(API_KEY_PREFIX):
            return Credential(
                "api_key",
                refresh_token=token,
                access_token=token,
                profile_arn=entry.profile_arn,
                region=region,
            )
        client_id, client_secret = self._secret("client_id"), self._secret("client_secret")
        if client_id and client_secret:
            return Credential(
                "idc",
                refresh_token=token,
                profile_arn=entry.profile_arn,
                region=region,
                client_id=client_id,
                client_secret=client_secret,
            )
        return Credential("social", refresh_token=token, profile_arn=entry.profile_arn, region=region)

    def save(self, credential: Credential) -> None:
        if credential.auth_kind == "api_key" or credential.refresh_token is None:
            return
        try:
            self._store.set(f"account.{self._entry.id}.refresh_token", credential.refresh_token)
        except SecretStoreError as exc:
            raise CredentialsError(f"{self.description}: {exc}") from None


class AccountBook:
    """The app's own accounts. ``home`` replaces the user's home for the IDE / kiro-cli imports (tests)."""

    def __init__(self, config_dir: Path, store: SecretStore, home: Path | None = None) -> None:
        self.path = config_dir / BOOK_FILE_NAME
        self._store = store
        self._home = home

    def entries(self) -> list[BookEntry]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise CredentialsError(
                f"accounts list {self.path} cannot be read ({type(exc).__name__})"
            ) from None
        raw = data.get("accounts") if isinstance(data, dict) else None
        found: list[BookEntry] = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict) or item.get("type") not in get_args(BookType):
                continue
            if not isinstance(item.get("id"), str) or not isinstance(item.get("name"), str):
                continue
            known = {k: v for k, v in item.items() if k in BookEntry.__dataclass_fields__}
            found.append(BookEntry(**known))
        return found

    def source(self, entry: BookEntry) -> CredentialStore:
        match entry.type:
            case "refresh_token" | "api_key":
                return BookSource(entry, self._store)
            case "creds_file":
                return CredsFileSource(Path(entry.path or ""))
            case "kiro_ide":
                return KiroIdeSource(home=self._home)
            case "kiro_cli":
                db = Path(entry.path) if entry.path else default_kiro_cli_db_paths(self._home, environ={})[0]
                return KiroCliSource(db)

    def add(
        self,
        name: str,
        kind: BookType,
        *,
        secret: str | None = None,
        region: str | None = None,
        profile_arn: str | None = None,
        path: Path | None = None,
    ) -> BookEntry:
        """Add an account (the caller has refused duplicates); the secret goes to the store first."""
        name = name.strip()
        if not name:
            raise CredentialsError("An account needs a name.")
        entries = self.entries()
        if any(e.name == name for e in entries):
            raise CredentialsError(f"There is already an account named {name!r}.")
        entry = BookEntry(
            secrets.token_hex(8),
            name,
            kind,
            region=region or None,
            profile_arn=profile_arn or None,
            path=str(path) if path is not None else None,
        )
        if kind in ("refresh_token", "api_key"):
            token = validate_refresh_token(secret or "", f"Account {name!r}")
            if kind == "api_key" and not token.startswith(API_KEY_PREFIX):
                raise CredentialsError(f"Account {name!r}: a Kiro API key starts with {API_KEY_PREFIX}")
            self._store.set(f"account.{entry.id}.refresh_token", token)
        self._write([*entries, entry])
        return entry

    def remove(self, name: str) -> None:
        entries = self.entries()
        entry = self._named(entries, name)
        for field in _SECRET_FIELDS:
            self._store.delete(f"account.{entry.id}.{field}")
        self._write([e for e in entries if e is not entry])

    def update(self, name: str, *, new_name: str | None = None, enabled: bool | None = None) -> BookEntry:
        entries = self.entries()
        entry = self._named(entries, name)
        if new_name is not None and new_name != name and any(e.name == new_name for e in entries):
            raise CredentialsError(f"There is already an account named {new_name!r}.")
        changed = replace(
            entry,
            name=new_name.strip() if new_name else entry.name,
            enabled=entry.enabled if enabled is None else enabled,
        )
        self._write([changed if e is entry else e for e in entries])
        return changed

    def _named(self, entries: list[BookEntry], name: str) -> BookEntry:
        for entry in entries:
            if entry.name == name:
                return entry
        raise CredentialsError(f"No account added in Kiro Tray is named {name!r}.")

    def _write(self, entries: list[BookEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"accounts": [{k: v for k, v in asdict(e).items() if v is not None} for e in entries]}
        atomic.write_json(self.path, body, mode=0o600)


def book_type(value: str) -> BookType:
    if value not in get_args(BookType):
        raise ValueError(value)
    return cast("BookType", value)
