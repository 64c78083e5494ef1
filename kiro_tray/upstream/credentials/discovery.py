"""Which credential source to use: the first step of :data:`FINDERS` that finds one."""

from __future__ import annotations

import logging
from pathlib import Path

from kiro_tray.upstream.secret_store import SecretStore

from .base import CredentialStore, Discovery, Finder
from .creds_file import find_creds_file
from .env import find_env
from .kiro_cli import detect_kiro_cli, find_kiro_cli_db
from .kiro_ide import detect_kiro_ide
from .saved_login import find_saved_login

log = logging.getLogger(__name__)

FINDERS: tuple[Finder, ...] = (
    find_env,  # REFRESH_TOKEN
    find_creds_file,  # KIRO_CREDS_FILE
    find_saved_login,  # the login saved in the app's secret store
    find_kiro_cli_db,  # KIRO_CLI_DB_FILE
    detect_kiro_ide,  # ~/.aws/sso/cache/kiro-auth-token.json
    detect_kiro_cli,  # kiro-cli's database in its default places
)
"""Discovery in order of precedence. A new kind of source is a module with its finder, and a line here."""


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
    wanted = Discovery(refresh_token, profile_arn, region, creds_file, kiro_cli_db, secret_store, home)
    chosen = _choose(wanted)
    if chosen is None:
        log.info("no Kiro credentials found (set REFRESH_TOKEN or KIRO_CREDS_FILE, or log in to Kiro)")
    return chosen


def _choose(wanted: Discovery) -> CredentialStore | None:
    for finder in FINDERS:
        found = finder(wanted)
        if found is not None:
            return found
    return None
