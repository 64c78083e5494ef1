"""Command line: ``kiro-tray`` / ``python -m kiro_tray`` (tray app) and ``--headless`` (server only).

CLI flags are generated from the settings declarations. The GUI is imported lazily, so a headless run
never imports PySide6.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from . import NAME, __version__
from .paths import AppPaths
from .settings import DECLARATIONS, Settings, SettingsError, load_settings
from .start_mode import StartMode, detect

log = logging.getLogger("kiro_tray")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=NAME,
        description="Local OpenAI- and Anthropic-compatible gateway to Kiro, with a tray app.",
        epilog="Every option can also be set in the environment, in .env, or in the settings window.",
    )
    parser.add_argument("--headless", action="store_true", help="run the gateway without the tray app")
    parser.add_argument("--config-dir", help="settings, secrets fallback and logs live here")
    parser.add_argument("--print-key", action="store_true", help="print the client API key and exit")
    parser.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    for setting in DECLARATIONS:
        if setting.secret:
            continue  # secrets on a command line end up in shell history and ps output
        help_text = f"{setting.help} (env {setting.env}, default {setting.default})"
        if setting.kind == "bool":
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                setting.flag, dest=setting.name, default=None, metavar=setting.env, help=help_text
            )
    return parser


def _cli_values(args: argparse.Namespace) -> dict[str, object]:
    return {
        s.name: getattr(args, s.name)
        for s in DECLARATIONS
        if not s.secret and getattr(args, s.name) is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["accounts"]:
        from .accounts_cli import main as accounts_main

        return accounts_main(given[1:])
    args = build_parser().parse_args(argv)
    paths = AppPaths.resolve(args.config_dir)
    try:
        settings = load_settings(cli=_cli_values(args), config_dir=paths.config_dir)
    except SettingsError as exc:
        print(f"{NAME}: invalid setting {exc}", file=sys.stderr)
        return 2
    start_mode = detect()
    if args.print_key:
        return asyncio.run(_print_key(settings, paths, start_mode))
    if args.headless:
        return run_headless(settings, paths, start_mode)
    try:
        from .ui.app import run_gui
    except ImportError as exc:
        print(
            f"{NAME}: the tray app needs the GUI extra ({exc.name} is missing): "
            f"pip install 'kiro-tray[gui]', or run with --headless.",
            file=sys.stderr,
        )
        return 2
    return int(run_gui(settings, paths, start_mode))


async def _stored_key(paths: AppPaths) -> str | None:
    """The client key saved by an earlier start (each start prints or shows a new key), or None."""
    from .gateway.service import PROXY_KEY_NAME
    from .upstream.secret_store import SecretStore

    return await asyncio.to_thread(SecretStore(paths.config_dir).get, PROXY_KEY_NAME)


async def _print_key(settings: Settings, paths: AppPaths, start_mode: StartMode) -> int:
    key = settings.proxy_api_key or await _stored_key(paths)
    if not key:
        print(
            f"{NAME}: no client key yet; start the gateway once (`{start_mode.hint()}`) to generate one.",
            file=sys.stderr,
        )
        return 1
    print(key)
    return 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def listening_url(host: str, port: int) -> str:
    """The address the server is bound to; for a wildcard host, also how the network reaches it."""
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"
    url = f"http://{shown}:{port}"
    if host in ("", "0.0.0.0", "::"):
        return f"{url}, reachable as http://{socket.gethostname()}:{port}"
    return url


async def _remote_refusal(settings: Settings, paths: AppPaths, start_mode: StartMode) -> str | None:
    """Why the gateway must not listen on a non-loopback host, or None when it may.

    Off loopback, only the client key guards Kiro; a key generated on this very start has not been seen
    by anyone who could hand it to a client, so that needs PROXY_API_KEY, a key saved earlier, or
    ALLOW_REMOTE."""
    if is_loopback(settings.host):
        return None
    log.warning(
        "HOST is %s: the gateway is reachable from the network, guarded by the client key", settings.host
    )
    if settings.allow_remote or settings.proxy_api_key or await _stored_key(paths):
        return None
    return (
        f"{NAME}: not listening on {settings.host} with a client key nobody has seen yet: set PROXY_API_KEY, "
        f"start once on 127.0.0.1 (`{start_mode.hint()}`) to make a key, or add --allow-remote."
    )


def run_headless(settings: Settings, paths: AppPaths, start_mode: StartMode) -> int:
    try:
        return asyncio.run(serve(settings, paths, start_mode))
    except KeyboardInterrupt:
        return 130


async def serve(
    settings: Settings, paths: AppPaths, start_mode: StartMode, *, ready: asyncio.Event | None = None
) -> int:
    """Run the gateway until SIGINT/SIGTERM; returns the process exit code."""
    from .gateway.service import GatewayService
    from .logging_setup import setup_logging
    from .upstream.secret_store import SecretStore

    logging_setup = setup_logging(settings.python_log_level, paths.log_dir)
    for secret in (settings.proxy_api_key, settings.refresh_token):
        logging_setup.redactor.add(secret)
    refusal = await _remote_refusal(settings, paths, start_mode)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        logging_setup.close()
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    service = GatewayService(
        settings, secret_store=SecretStore(paths.config_dir), logging_setup=logging_setup
    )
    await service.start()
    if service.state != "running":
        print(f"{NAME}: {service.last_message}", file=sys.stderr)
        logging_setup.close()
        return 1
    print_key = start_mode.hint("--print-key")
    if service.proxy_key_generated:
        print(
            f"New client API key (saved; `{print_key}` shows it again): {service.proxy_api_key}",
            flush=True,
        )
    assert service.port is not None  # running
    log.info(
        "Kiro Tray listening on %s (client key: `%s`; credentials: %s)",
        listening_url(settings.host, service.port),
        print_key,
        service.accounts.info().state,
    )
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down")
    await service.stop()
    logging_setup.close()
    return 0
