"""A test run saves the README's screenshots (docs/screenshots) after real traffic through the fake Kiro."""

from __future__ import annotations

import openai
import pytest
from PySide6.QtGui import QImage

from kiro_tray.ui.app import TrayApp

from ..fake_kiro.server import usage_answer
from ..harness import ALLOW_NO_CREDENTIALS, TEST_KEY
from . import screenshots
from .conftest import Arun, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

MODELS = (
    "claude-sonnet-4.5",
    "claude-haiku-4.5",
    "claude-sonnet-4.5",
    "claude-opus-4.5",
    "claude-sonnet-4.5",
)


def pool_app(make_app: UiFactory, arun: Arun) -> TrayApp:
    """Three accounts after some traffic: one used a lot, one throttled, one with a bonus grant."""
    app = make_app(pool=("work", "personal", "team"), log_level="INFO")
    pool = make_app.pool
    pool["work"].usage = usage_answer(312, 1000, plan="KIRO PRO", days_to_reset=20)
    pool["personal"].usage = usage_answer(47.5, 50, plan="KIRO FREE", days_to_reset=6)
    pool["team"].usage = usage_answer(1210, 2000, plan="KIRO PRO+", bonus=500, days_to_reset=27)
    arun(app.service.accounts.check())

    async def traffic() -> None:
        async with openai.AsyncOpenAI(
            base_url=f"{app.service.url}/v1", api_key=TEST_KEY, max_retries=0
        ) as sdk:
            for i in range(3):
                if i == 1:
                    pool["work"].throttled, pool["work"].retry_after = True, 900
                await sdk.chat.completions.create(
                    model="claude-sonnet-4.5", messages=[{"role": "user", "content": f"Question {i}"}]
                )

    arun(traffic())
    return app


@ALLOW_NO_CREDENTIALS
def test_save_screenshots(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(log_level="INFO")

    async def traffic() -> None:
        async with openai.AsyncOpenAI(
            base_url=f"{app.service.url}/v1", api_key=TEST_KEY, max_retries=0
        ) as sdk:
            for i, model in enumerate(MODELS):
                messages = [{"role": "user", "content": f"Question {i}"}]
                if i % 2:
                    stream = await sdk.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
                    async for _ in stream:
                        pass
                else:
                    await sdk.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        async with openai.AsyncOpenAI(
            base_url=f"{app.service.url}/v1", api_key="not-the-key", max_retries=0
        ) as bad:
            with pytest.raises(openai.AuthenticationError):
                await bad.chat.completions.create(
                    model="claude-sonnet-4.5", messages=[{"role": "user", "content": "x"}]
                )

    arun(traffic())
    total = len(MODELS) + 1
    model = app.window.requests_model
    arun(wait_until(app.bridge.flushed, lambda: model.rowCount() == total and model.record_at(0).finished))
    app.window.requests.table.selectRow(1)

    screenshots.OUT_DIR.mkdir(parents=True, exist_ok=True)
    saved = [
        *screenshots.save_window_tabs(app),
        screenshots.save_settings_page(app, "settings-page"),
        screenshots.save_tray_menu(app),
    ]
    first_run = make_app(with_credentials=False, log_level="INFO")
    saved.append(screenshots.save_settings_page(first_run, "first-run"))
    saved += screenshots.save_accounts(pool_app(make_app, arun))
    for path in saved:
        image = QImage(str(path))
        assert not image.isNull(), path
        assert image.width() >= 150 and image.height() >= 120, path
