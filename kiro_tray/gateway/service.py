"""GatewayService: the one owner of the gateway's lifecycle.

It owns the aiohttp runner and site, the upstream ``ClientSession`` and the client key. The Kiro logins are
the :class:`~kiro_tray.gateway.accounts.AccountsRegistry`'s. Each request's events (``requests``) feed the
request store, the metrics, the access log and the registry. ``start``/``stop``/``restart`` are idempotent
and run on the caller's loop (the qasync loop in the GUI, ``asyncio.run`` headless); state changes are
published through Qt-free signals.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from .. import NAME, __version__
from ..events import RequestEvent, ServiceState, ServiceStateChanged
from ..logging_setup import LoggingSetup
from ..metrics import Metrics
from ..settings import Settings
from ..signals import Signal
from ..store import RequestStore
from ..upstream.kiro_client import ClientConfig, KiroClient
from ..upstream.secret_store import SecretStore
from ..upstream.token_manager import TokenEvent, TokenRefreshed, TokenRefreshFailed
from .access_log import AccessLog
from .accounts import AccountsRegistry
from .app import build_app

log = logging.getLogger("kiro_tray.gateway")

PROXY_KEY_NAME = "proxy_api_key"


def upstream_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, and the
    platform's settings where Python reads them), or None when there is none or ``NO_PROXY`` exempts the
    host. Blocking on some platforms: call it in a thread."""
    host = URL(url).host or ""
    if not host or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(URL(url).scheme) or proxies.get("all") or None


def generate_proxy_key() -> str:
    return "kt-" + secrets.token_urlsafe(32)


class GatewayService:
    def __init__(
        self,
        settings: Settings,
        *,
        secret_store: SecretStore,
        logging_setup: LoggingSetup | None = None,
        home: Path | None = None,
        client_tuning: Mapping[str, Any] | None = None,
        ping_interval: float = 15.0,
    ) -> None:
        """``client_tuning`` overrides :class:`ClientConfig` fields (tests shorten the retry backoff);
        ``ping_interval`` is the upstream silence after which a stream gets its dialect's keep-alive."""
        self.settings = settings
        self.secret_store = secret_store
        self.logging_setup = logging_setup
        self.home = home
        self.store = RequestStore()
        self.metrics = Metrics()
        self.accounts = AccountsRegistry(
            settings, secret_store=secret_store, home=home, redact=self._redact
        )
        self.requests: Signal[RequestEvent] = Signal("service.requests")
        self.requests.connect(self.store.on_event)
        self.requests.connect(self.metrics.on_event)
        self.requests.connect(self.accounts.on_request)
        self.requests.connect(AccessLog().on_event)
        self.accounts.token_events.connect(self._count_token_event)
        self.state_changed: Signal[ServiceStateChanged] = Signal("service.state")
        self.state: ServiceState = "stopped"
        self.last_message: str | None = None
        #: Why the last problem state was entered (see ServiceStateChanged.reason).
        self.last_reason: str | None = None
        self.proxy_api_key: str = ""
        self.proxy_key_generated = False
        self.port: int | None = None
        self.session: aiohttp.ClientSession | None = None
        self.client: KiroClient | None = None
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self.stopping = False
        self.ping_interval = ping_interval
        self._client_tuning = dict(client_tuning or {})
        self._stream_tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    def _set_state(self, state: ServiceState, message: str | None = None, reason: str | None = None) -> None:
        self.state = state
        self.last_message = message
        self.last_reason = reason
        self.state_changed.emit(ServiceStateChanged(state, self.url, message, reason))

    async def start(self) -> None:
        async with self._lock:
            if self.state == "running":
                return
            self._set_state("starting")
            try:
                await self._start()
            except OSError as exc:
                await self._teardown()
                reason, message = await self._explain_bind_error(exc)
                log.error("%s", message)
                self._set_state("failed", message, reason)
                return
            except Exception as exc:
                await self._teardown()
                log.exception("the gateway failed to start")
                self._set_state("failed", f"The gateway failed to start: {exc}", "error")
                return
            log.info("Kiro Tray %s gateway started (%s)", __version__, self.url)
            self._set_state("running", f"Running on {self.url}")

    async def _start(self) -> None:
        self.stopping = False
        await self._resolve_proxy_key()
        proxy = await asyncio.to_thread(upstream_proxy, self.settings.api_base_url)
        if proxy:
            log.info("using the proxy from the environment for Kiro")
        self.session = aiohttp.ClientSession(
            # The proxy is looked up once here rather than per request (trust_env costs two thread-pool
            # trips per request, measured at about 0.25 ms of added first-byte latency).
            trust_env=False,
            proxy=proxy,
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, connect=30),
        )
        self.client = KiroClient(self.session, self._client_config())  # it logs its own retries
        self.accounts.attach(self.session)
        await self.accounts.discover()
        app = build_app(self)
        runner = web.AppRunner(
            # Bodies are decompressed by the routes (convert.read_body), bounded and with clear errors.
            app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=5.0,
            auto_decompress=False,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_address=True)
        await site.start()
        self.port = int(runner.addresses[0][1])

    def _client_config(self) -> ClientConfig:
        s = self.settings
        return ClientConfig(
            api_base_url=s.api_base_url,
            first_token_timeout=s.first_token_timeout,
            stream_read_timeout=s.stream_read_timeout,
            non_stream_timeout=s.non_stream_timeout,
            max_retries=s.max_retries,
            slow_model_multiplier=s.slow_model_timeout_multiplier,
            **self._client_tuning,
        )

    async def _explain_bind_error(self, exc: OSError) -> tuple[str, str]:
        where = f"{self.settings.host}:{self.settings.port}"
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, 10048, 10013):
            return "error", f"Cannot listen on {where}: {exc.strerror or exc}"
        if exc.errno in (errno.EACCES, 10013):
            return "port_denied", f"Not allowed to listen on {where} (try a port above 1024)."
        if await self._our_gateway_answers():
            return "already_running", f"Kiro Tray is already running on {where}."
        return "port_busy", f"Port {self.settings.port} is busy: another program is using {where}."

    async def _our_gateway_answers(self) -> bool:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as probe,
                probe.get(f"http://{host}:{self.settings.port}/health") as resp,
            ):
                body = await resp.json(content_type=None)
                return isinstance(body, dict) and body.get("name") == NAME
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def stop(self) -> None:
        async with self._lock:
            if self.state in ("stopped", "failed") and self._runner is None:
                if self.state == "failed":
                    self._set_state("stopped")
                return
            self._set_state("stopping")
            await self._teardown()
            self._set_state("stopped")
            log.info("gateway stopped")

    async def _teardown(self) -> None:
        self.stopping = True
        for task in list(self._stream_tasks):
            task.cancel()
        if self._stream_tasks:
            await asyncio.wait(list(self._stream_tasks), timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.session is not None:
            await self.session.close()
            self.session = None
        self.client = None
        self.accounts.detach()
        await self.accounts.flush()  # an account state changed just before the stop is on disk
        self.port = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def apply_settings(self, new: Settings) -> None:
        """Apply only what changed: host/port restart, credentials reset, log level live."""
        changed = new.changed(self.settings)
        self.settings = new
        if not changed:
            return
        applies = {s.applies for s in changed}
        if self.logging_setup is not None:
            self.logging_setup.set_level(new.python_log_level)
        self.accounts.settings = new
        if self.state == "failed" and "restart_server" in applies:
            await self.start()  # a new port after a busy one: try it
            return
        if self.state != "running":
            if "reset_credentials" in applies:
                await self.accounts.reset()
            return
        if "restart_server" in applies:
            await self.restart()
            return
        if "reset_credentials" in applies:
            await self.accounts.reset()
        if any(s.name == "proxy_api_key" for s in changed):
            await self._resolve_proxy_key()
        if self.client is not None:
            self.client.config = self._client_config()

    # ---- credentials -----------------------------------------------------------------------------

    async def _resolve_proxy_key(self) -> None:
        if self.settings.proxy_api_key:
            self.proxy_api_key = self.settings.proxy_api_key
            self.proxy_key_generated = False
        else:
            stored = await asyncio.to_thread(self.secret_store.get, PROXY_KEY_NAME)
            if stored:
                self.proxy_api_key = stored
                self.proxy_key_generated = False
            else:
                self.proxy_api_key = generate_proxy_key()
                self.proxy_key_generated = True
                await asyncio.to_thread(self.secret_store.set, PROXY_KEY_NAME, self.proxy_api_key)
                log.info(
                    "generated a new client API key and saved it (%s)", self.secret_store.backend_description
                )
        self._redact(self.proxy_api_key)

    async def regenerate_proxy_key(self) -> str:
        self.proxy_api_key = generate_proxy_key()
        await asyncio.to_thread(self.secret_store.set, PROXY_KEY_NAME, self.proxy_api_key)
        self._redact(self.proxy_api_key)
        return self.proxy_api_key

    def _redact(self, *secrets: str | None) -> None:
        if self.logging_setup is not None:
            self.logging_setup.redactor.add(*secrets)

    def _count_token_event(self, event: TokenEvent) -> None:
        if isinstance(event, TokenRefreshed):
            self.metrics.refreshes += 1
        elif isinstance(event, TokenRefreshFailed):
            self.metrics.refresh_failures += 1

    # ---- streams and models ----------------------------------------------------------------------

    def track_stream(self, task: asyncio.Task[Any]) -> None:
        self._stream_tasks.add(task)
        task.add_done_callback(self._stream_tasks.discard)
