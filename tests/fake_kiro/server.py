"""A faithful fake of the Kiro backend: a real aiohttp server on a real port speaking the real protocol.

One server plays every host: point ``KIRO_API_BASE_URL``, ``KIRO_AUTH_BASE_URL`` and
``KIRO_OIDC_BASE_URL`` at :attr:`FakeKiro.url`.
"""

from __future__ import annotations

from aiohttp import web

from kiro_tray.protocol.eventstream import encode_event

from .auth import Account, AuthState, bearer_error


class FakeKiro:
    def __init__(self) -> None:
        self.auth = AuthState()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/refreshToken", self.auth.handle_refresh_token)
        self.app.router.add_post("/token", self.auth.handle_oidc_token)
        self.app.router.add_post("/generateAssistantResponse", self.handle_generate)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_account(self, refresh_token: str | None = None, **kwargs: object) -> Account:
        return self.auth.add_account(refresh_token, **kwargs)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        bound = server.sockets[0].getsockname()[1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle_generate(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        account, valid = self.auth.account_for_access_token(auth.removeprefix("Bearer "))
        if account is None or not valid:
            return bearer_error()
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        await resp.write(encode_event("assistantResponseEvent", b'{"content":"Hello from the fake Kiro."}'))
        await resp.write_eof()
        return resp
