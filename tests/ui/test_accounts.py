"""Several Kiro accounts in the app: the tray's first lines and Accounts submenu (pin, strategy), the icon,
the notifications, the Accounts page's actions and the Requests page's account and failover hops. The pool is
``work`` then ``home`` in front of the fake Kiro, each account scripted with Kiro's own answers."""

from __future__ import annotations

import json

import openai
import pytest
from PySide6.QtWidgets import QDialogButtonBox, QInputDialog, QMessageBox

from kiro_tray.settings import SETTINGS_FILE_NAME
from kiro_tray.ui import account_words
from kiro_tray.ui.accounts_view import AddAccountDialog
from kiro_tray.ui.app import TrayApp
from kiro_tray.ui.requests_view import COLUMN_INDEX, describe

from ..fake_kiro.server import usage_answer
from ..harness import ALLOW_REFRESH_FAILURES, TEST_KEY
from .conftest import Arun, UiFactory, wait_until
from .test_no_secrets import rendered_texts

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]
POOL = ("work", "home")


async def ask(app: TrayApp) -> str:
    """One chat request through the official SDK; the account that served it."""
    async with openai.AsyncOpenAI(base_url=f"{app.service.url}/v1", api_key=TEST_KEY, max_retries=0) as sdk:
        await sdk.chat.completions.create(
            model="claude-sonnet-4.5",
            messages=[{"role": "user", "content": "hi"}],
        )
    record = list(app.service.store)[-1]
    return record.account or ""


def menu_texts(app: TrayApp) -> list[str]:
    app.tray.menu.aboutToShow.emit()
    return [a.text() for a in app.tray.menu.actions() if not a.isSeparator()]


def accounts_texts(app: TrayApp) -> list[str]:
    app.tray.menu.aboutToShow.emit()
    return [a.text() for a in app.tray.accounts_menu.actions() if not a.isSeparator()]


def notifications(app: TrayApp) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    app.controller.notified.connect(lambda title, message: seen.append((title, message)))
    return seen


def test_the_tray_shows_the_active_accounts_quota_and_every_account(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(pool=POOL)
    make_app.pool["work"].usage = usage_answer(312, 1000, plan="KIRO PRO", days_to_reset=12)
    arun(app.service.accounts.check())
    work = app.controller.accounts.named("work")
    assert work is not None and work.usage.resets_at is not None
    line = f"work · Pro · 312 of 1,000 credits · resets {account_words.day(work.usage.resets_at)}"
    texts = menu_texts(app)
    assert texts[1] == line and line in app.tray.icon.toolTip()
    assert accounts_texts(app) == [
        "Automatic (Sticky)",
        "work · available · 312 of 1,000",
        "home · available · 12 of 50",  # the fake's default usage
        "Strategy",
        "Manage accounts…",
    ]
    entries = app.tray.accounts_menu.actions()
    assert app.tray.action("Automatic", app.tray.accounts_menu).isChecked()
    assert next(a for a in entries if a.text().startswith("work")).font().bold()  # the active one


def test_pin_and_strategy_from_the_tray_are_applied_and_saved(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(pool=POOL)
    settings_file = app.paths.config_dir / SETTINGS_FILE_NAME
    assert arun(ask(app)) == "work"
    app.tray.menu.aboutToShow.emit()
    app.tray.action("home", app.tray.accounts_menu).trigger()
    arun(wait_until(app.controller.changed, lambda: app.service.settings.account_pin == "home"))
    assert arun(ask(app)) == "home"
    assert json.loads(settings_file.read_text())["account_pin"] == "home"
    assert app.window.settings.fields["account_pin"].raw() == "home"  # the settings page shows it too
    assert not app.window.settings.apply_button.isEnabled()  # and has nothing unsaved
    app.tray.menu.aboutToShow.emit()
    assert app.tray.action("home", app.tray.accounts_menu).isChecked()

    app.tray.action("Automatic", app.tray.accounts_menu).trigger()
    arun(wait_until(app.controller.changed, lambda: app.service.settings.account_pin == ""))
    app.tray.menu.aboutToShow.emit()
    app.tray.action("Round-robin", app.tray.strategy_menu).trigger()
    arun(wait_until(app.controller.changed, lambda: app.controller.accounts.strategy == "round-robin"))
    assert json.loads(settings_file.read_text())["account_strategy"] == "ROUND-ROBIN"
    served = [arun(ask(app)) for _ in range(2)]
    assert sorted(served) == ["home", "work"]
    assert accounts_texts(app)[0] == "Automatic (Round-robin)"


def test_failover_keeps_the_icon_calm_until_no_account_can_serve(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(pool=POOL)
    seen = notifications(app)
    make_app.pool["work"].suspended = True
    assert arun(ask(app)) == "home"
    arun(wait_until(app.controller.changed, lambda: app.controller.accounts.active == "home"))
    assert app.tray.shown_state == "running"
    assert ("Kiro account failed over", "Kiro account work failed (suspended); moved on.") in seen
    assert "Kiro account suspended" in [title for title, _ in seen]
    assert "work · suspended by Kiro" in accounts_texts(app)[1]

    record = list(app.service.store)[-1]
    model = app.window.requests_model
    arun(wait_until(app.bridge.flushed, lambda: model.rowCount() == 1 and model.record_at(0).finished))
    cell = model.data(model.index(0, COLUMN_INDEX["Account"]))
    assert cell == "home ← work"
    assert "Failed over from: work: suspended" in describe(record)

    make_app.pool["home"].quota_exhausted = True
    with pytest.raises(openai.RateLimitError):
        arun(ask(app))
    arun(wait_until(app.controller.changed, lambda: app.tray.shown_state == "problem"))
    assert not app.controller.accounts.can_serve


@ALLOW_REFRESH_FAILURES
def test_credit_marks_and_a_dead_login_notify(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(pool=POOL)
    seen = notifications(app)
    make_app.pool["work"].usage = usage_answer(850, 1000)
    arun(app.service.accounts.check("work"))
    arun(wait_until(app.controller.notified, lambda: bool(seen)))
    assert seen == [("Kiro credits at 80 %", "Kiro account work has used 85 % of its credits.")]
    make_app.pool["work"].usage = usage_answer(960, 1000)
    arun(app.service.accounts.check("work"))
    assert seen[-1][0] == "Kiro credits at 95 %"
    arun(app.service.accounts.check("work"))
    assert len(seen) == 2  # once per kind and account per hour

    make_app.pool["home"].expire_login()
    arun(app.service.accounts.check("home"))
    assert ("Kiro login needed", "Kiro account home needs a new login.") in seen
    app.window.accounts.refresh()
    assert "needs a new login" in app.window.accounts.model.data(app.window.accounts.model.index(1, 1))


def fill_add(app: TrayApp, kind: str, **fields: str) -> None:
    panel = app.window.accounts
    panel.add_button.menu().aboutToShow.emit()
    next(a for a in panel.add_menu.actions() if a.text().startswith(kind)).trigger()
    dialog = panel.dialog
    assert isinstance(dialog, AddAccountDialog)
    for name, value in fields.items():
        getattr(dialog, f"{name}_edit").setText(value)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_the_accounts_page_adds_renames_disables_checks_and_removes(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(pool=POOL)
    panel = app.window.accounts
    app.window.show_tab("accounts")
    arun(wait_until(app.bridge.flushed, lambda: panel.model.rowCount() == 2))
    assert [panel.model.account_at(r).name for r in range(panel.model.rowCount())] == ["work", "home"]
    spare = make_app.upstream.fake.add_account()
    spare.usage = usage_answer(40, 500, plan="KIRO PRO")

    fill_add(app, "Paste a refresh token", name="spare", secret=spare.refresh_token)
    arun(wait_until(panel.done, lambda: panel.status.text().startswith("Added")))
    assert panel.selected() is not None and panel.selected().name == "spare"  # type: ignore[union-attr]
    assert all(spare.refresh_token not in text for _, text in rendered_texts(app))
    fill_add(app, "Paste a refresh token", name="again", secret=spare.refresh_token)
    arun(wait_until(panel.done, lambda: "already the account 'spare'" in panel.status.text()))
    assert panel.model.rowCount() == 3

    panel.check_button.click()
    arun(wait_until(panel.done, lambda: panel.status.text().startswith("Checked spare")))
    assert "40 of 500 credits" in panel.model.data(panel.model.index(2, 2))
    assert "Pro · 40 of 500 credits" in panel.detail.text()

    panel.rename_button.click()
    rename = panel.dialog
    assert isinstance(rename, QInputDialog)
    rename.setTextValue("personal")
    rename.accept()
    arun(wait_until(panel.done, lambda: panel.status.text().startswith("Renamed")))
    assert panel.selected().name == "personal"  # type: ignore[union-attr]
    assert app.service.accounts.snapshot().named("personal") is not None

    panel.enable_button.click()
    arun(wait_until(panel.done, lambda: panel.status.text().startswith("Disabled")))
    assert panel.model.data(panel.model.index(2, 1)) == "disabled" and panel.enable_button.text() == "Enable"

    panel.remove_button.click()
    box = panel.dialog
    assert isinstance(box, QMessageBox)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert panel.status.text() == "The account 'personal' was kept." and panel.model.rowCount() == 3
    panel.remove_button.click()
    box = panel.dialog
    assert isinstance(box, QMessageBox)
    next(b for b in box.buttons() if b.text() == "Remove").click()
    arun(wait_until(panel.done, lambda: panel.status.text().startswith("Removed")))
    assert panel.model.rowCount() == 2

    panel.select("work")
    assert not panel.remove_button.isEnabled()  # from the accounts file: removed there
    assert not panel.rename_button.isEnabled()
    panel.pin_button.click()
    arun(wait_until(panel.done, lambda: app.service.settings.account_pin == "work"))
    assert panel.pin_button.text() == "Unpin" and "pinned to work" in panel.summary.text()
