"""Kiro credentials: what a credential is, and where it comes from, one source per module.

Sources are described in kiro-protocol.md 1.1; every one loads into a :class:`Credential` and knows how
to write a rotated refresh token back to where it came from:

- :class:`EnvSource` (``REFRESH_TOKEN``) and :class:`TenantSource` (multi-tenant): in memory only
  (``env``);
- :class:`CredsFileSource` (``KIRO_CREDS_FILE``, ``creds_file``) and :class:`KiroIdeSource`
  (``kiro-auth-token.json``, ``kiro_ide``);
- :class:`KiroCliSource` (kiro-cli's ``data.sqlite3``, ``kiro_cli``); :class:`KeyringSource` (the app's
  own store, ``saved_login``, which also has :func:`save_login` for a pasted token).

:func:`discover` picks one by walking ``discovery.FINDERS``: a new kind of source is one new module with
its class and finder, plus one line there. Problems are :class:`~kiro_tray.protocol.errors.CredentialsError`
naming the setting or path and the problem, never a secret. Every ``load``/``save`` is blocking I/O: use
a thread. Files are rewritten atomically (:mod:`kiro_tray.atomic`) and keep fields this code does not
know.
"""

from .base import (
    API_KEY_PREFIX,
    DEFAULT_REGION,
    AuthKind,
    Credential,
    CredentialStore,
    Discovery,
    Finder,
    SourceKind,
    validate_refresh_token,
)
from .creds_file import CredsFileSource
from .discovery import FINDERS, discover
from .env import EnvSource, TenantSource
from .kiro_cli import (
    KIRO_CLI_PROFILE_KEY,
    KIRO_CLI_REGISTRATION_KEYS,
    KIRO_CLI_TOKEN_KEYS,
    KiroCliSource,
    default_kiro_cli_db_paths,
)
from .kiro_ide import KiroIdeSource, default_kiro_ide_token_path
from .saved_login import KeyringSource, save_login

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_REGION",
    "FINDERS",
    "KIRO_CLI_PROFILE_KEY",
    "KIRO_CLI_REGISTRATION_KEYS",
    "KIRO_CLI_TOKEN_KEYS",
    "AuthKind",
    "Credential",
    "CredentialStore",
    "CredsFileSource",
    "Discovery",
    "EnvSource",
    "Finder",
    "KeyringSource",
    "KiroCliSource",
    "KiroIdeSource",
    "SourceKind",
    "TenantSource",
    "default_kiro_cli_db_paths",
    "default_kiro_ide_token_path",
    "discover",
    "save_login",
    "validate_refresh_token",
]
