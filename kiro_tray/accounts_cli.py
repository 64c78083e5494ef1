"""``kiro-tray accounts ...``: list, add, remove, enable, disable and check the Kiro accounts of the pool.

It works on the same config folder as the app (``--config-dir`` / ``KIRO_TRAY_CONFIG_DIR``); a running app
sees the change on its next reset (settings change or restart).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import NAME
from .paths import AppPaths
from .settings import Settings, SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{NAME} accounts", description="Manage the Kiro accounts of the pool."
    )
    parser.add_argument("--config-dir", help="settings, secrets fallback and logs live here")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every account: name, type, source, state, credits, reset")
    add = commands.add_parser("add", help="add an account")
    add.add_argument("--name", required=True)
    given = add.add_mutually_exclusive_group(required=True)
    given.add_argument("--refresh-token", help="a Kiro refresh token (stored in the keyring)")
    given.add_argument("--creds-file", type=Path, help="a credentials JSON file (kept where it is)")
    given.add_argument("--api-key", help="a Kiro API key ksk_... (stored in the keyring)")
    given.add_argument("--from-ide", action="store_true", help="the Kiro IDE's login")
    given.add_argument("--from-kiro-cli", action="store_true", help="kiro-cli's login")
    add.add_argument("--profile-arn")
    add.add_argument("--region")
    for command in ("remove", "enable", "disable"):
        commands.add_parser(command, help=f"{command} an account").add_argument("name")
    commands.add_parser("check", help="refresh the login and read the quota now").add_argument(
        "name", nargs="?"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    paths = AppPaths.resolve(args.config_dir)
    try:
        settings = load_settings(config_dir=paths.config_dir)
    except SettingsError as exc:
        print(f"{NAME}: invalid setting {exc}", file=sys.stderr)
        return 2
    from .protocol.errors import CredentialsError
    from .upstream.secret_store import SecretStoreError

    try:
        return asyncio.run(_run(args, settings, paths))
    except (CredentialsError, SecretStoreError) as exc:
        print(f"{NAME}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings, paths: AppPaths) -> int:
    import aiohttp

    from .gateway.accounts import AccountsRegistry
    from .upstream.secret_store import SecretStore

    registry = AccountsRegistry(
        dataclasses.replace(settings, usage_poll_minutes=0), secret_store=SecretStore(paths.config_dir)
    )
    await registry.discover()
    command = args.command
    if command == "add":
        await _add(registry, args)
        print(f"Added the account {args.name!r}.")
    elif command == "remove":
        if not any(a.name == args.name and a.book for a in registry.accounts):
            print(f"{NAME}: {args.name!r} is not an account added in Kiro Tray.", file=sys.stderr)
            return 1
        await registry.remove(args.name)
        print(f"Removed the account {args.name!r}.")
    elif command in ("enable", "disable"):
        await registry.set_enabled(args.name, command == "enable")
        await registry.flush()
        print(f"{command.capitalize()}d the account {args.name!r}.")
    elif command == "check":
        async with aiohttp.ClientSession() as session:
            registry.attach(session)
            await registry.check(args.name)
            registry.detach()
            await registry.flush()
        _print_table(registry.rows())
    else:
        _print_table(registry.rows())
    return 0


async def _add(registry: Any, args: argparse.Namespace) -> None:
    """One login, as the registry adds it (it refuses a duplicate and keeps nothing of it)."""
    from .upstream.account_book import BookType

    kind: BookType
    secret: str | None = None
    path: Path | None = None
    if args.refresh_token:
        kind, secret = "refresh_token", args.refresh_token
    elif args.api_key:
        kind, secret = "api_key", args.api_key
    elif args.creds_file:
        kind, path = "creds_file", args.creds_file.expanduser().resolve()
    elif args.from_ide:
        kind = "kiro_ide"
    else:
        kind = "kiro_cli"
    import aiohttp

    async with aiohttp.ClientSession() as session:
        registry.attach(session)  # so the new login is checked against the others' Kiro user
        try:
            await registry.add(
                args.name, kind, secret=secret, region=args.region, profile_arn=args.profile_arn, path=path
            )
        finally:
            registry.detach()
            await registry.flush()


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("NAME", "TYPE", "SOURCE", "STATE", "CREDITS", "RESETS")
    lines = [header]
    for row in rows:
        used, limit = row["credits_used"], row["credits_limit"]
        credits = f"{used:g}/{limit:g}" if used is not None and limit is not None else "-"
        lines.append(
            (
                row["name"],
                row["type"] or "-",
                row["source"],
                row["state"],
                credits,
                (row["resets_at"] or "-")[:10],
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
