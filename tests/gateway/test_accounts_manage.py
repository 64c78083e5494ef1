"""Managing the pool from the app, Qt-free: add (duplicates refused), rename (state kept; a found-by-itself
Kiro IDE login joins the book), remove (asks nothing here: the UI asks), and the snapshot the app shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiro_tray.gateway.accounts import AccountsRegistry
from kiro_tray.protocol.errors import CredentialsError
from kiro_tray.upstream.secret_store import SecretStore

from ..fake_kiro.server import usage_answer
from ..harness import ALLOW_NO_CREDENTIALS, Gateway, start_gateway, stop_gateway
from .test_accounts_pool import POOL, ask, last_record, set_flag


def names(gw: Gateway) -> list[str]:
    return [a.name for a in gw.service.accounts.accounts]


def fresh_names(gw: Gateway) -> dict[str, str]:
    """Account names and states as a new start of the app reads them from the same config folder."""
    gw.run(gw.service.accounts.flush())
    fresh = AccountsRegistry(gw.service.settings, secret_store=SecretStore(gw.home / "config"), home=gw.home)
    gw.run(fresh.discover())
    return {view.name: view.state for view in fresh.snapshot().accounts}


@POOL
def test_an_added_account_serves_and_a_duplicate_is_refused(gateway: Gateway) -> None:
    registry = gateway.service.accounts
    third = gateway.thread.call(gateway.fake.add_account)
    original = third.refresh_token
    added = gateway.run(registry.add("spare", "refresh_token", secret=original))
    assert added.name == "spare" and names(gateway) == ["work", "home", "spare"]
    view = registry.snapshot().named("spare")
    assert view is not None and view.source == "app" and view.removable and view.renamable
    # The token spare was added with has rotated by now (checking its user refreshed it): still the same
    # login, by its lineage.
    assert third.refresh_token != original
    with pytest.raises(CredentialsError, match="already the account 'spare'"):
        gateway.run(registry.add("again", "refresh_token", secret=original))
    with pytest.raises(CredentialsError, match="already the account 'work'"):
        gateway.run(registry.add("again", "refresh_token", secret=gateway.pool["work"].refresh_token))
    with pytest.raises(CredentialsError, match="already an account named 'home'"):
        gateway.run(registry.add("home", "api_key", secret="ksk_" + "a" * 40))
    assert names(gateway) == ["work", "home", "spare"]
    assert json.loads(registry.book.path.read_text())["accounts"][0]["name"] == "spare"  # no leftover entry
    set_flag(gateway, gateway.pool["work"], suspended=True)
    set_flag(gateway, gateway.pool["home"], suspended=True)
    assert ask(gateway, "openai", False).startswith("You said")
    assert last_record(gateway).account == "spare"


@POOL
def test_a_second_login_of_the_same_kiro_user_is_refused(gateway: Gateway) -> None:
    """A new refresh token of a user the pool already has (another device's login, say): same user in the
    usage answer, same profile."""
    registry = gateway.service.accounts
    twin = gateway.thread.call(lambda: gateway.fake.add_account(user_id=gateway.pool["home"].user_id))
    with pytest.raises(CredentialsError, match="same Kiro user and profile as the account 'home'"):
        gateway.run(registry.add("twin", "refresh_token", secret=twin.refresh_token))
    assert names(gateway) == ["work", "home"]
    assert json.loads(registry.book.path.read_text())["accounts"] == []  # nothing kept of it


@POOL
def test_rename_keeps_state_and_counters_and_survives_a_restart(gateway: Gateway) -> None:
    registry = gateway.service.accounts
    third = gateway.thread.call(gateway.fake.add_account)
    third.usage = usage_answer(312, 1000, plan="KIRO PRO")
    gateway.run(registry.add("spare", "refresh_token", secret=third.refresh_token))
    gateway.run(registry.check("spare"))
    gateway.run(registry.set_enabled("spare", False))
    gateway.run(registry.rename("spare", "  personal "))
    view = registry.snapshot().named("personal")
    assert view is not None and view.usage.credits_used == 312 and view.usage.plan == "KIRO PRO"
    assert view.state == "disabled" and registry.snapshot().named("spare") is None
    assert fresh_names(gateway) == {"work": "available", "home": "available", "personal": "disabled"}
    with pytest.raises(CredentialsError, match="already an account named 'home'"):
        gateway.run(registry.rename("personal", "home"))
    with pytest.raises(CredentialsError, match="needs a name"):
        gateway.run(registry.rename("personal", " "))
    with pytest.raises(CredentialsError, match="accounts file"):
        gateway.run(registry.rename("work", "office"))
    with pytest.raises(CredentialsError, match="accounts file"):
        gateway.run(registry.remove("work"))
    gateway.run(registry.remove("personal"))
    assert names(gateway) == ["work", "home"] and fresh_names(gateway) == {
        "work": "available",
        "home": "available",
    }


@ALLOW_NO_CREDENTIALS
def test_renaming_the_detected_kiro_ide_login_adds_it_to_the_book(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, with_account=False)
    try:
        account = gw.thread.call(gw.fake.add_account, None)
        token_file = tmp_path / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
        token_file.parent.mkdir(parents=True)
        token_file.write_text(json.dumps({"refreshToken": account.refresh_token, "authMethod": "social"}))
        registry = gw.service.accounts
        gw.run(registry.reset())
        assert names(gw) == ["kiro_ide"]
        view = registry.snapshot().named("kiro_ide")
        assert view is not None and view.renamable and not view.removable
        gw.run(registry.rename("kiro_ide", "work"))
        assert names(gw) == ["work"] and registry.snapshot().active == "work"
        assert ask(gw, "anthropic", True).startswith("You said")
        assert last_record(gw).account == "work"
        assert fresh_names(gw) == {"work": "available"}
        book = json.loads(registry.book.path.read_text())["accounts"]
        assert [(e["name"], e["type"]) for e in book] == [("work", "kiro_ide")]
        assert account.refresh_token not in registry.book.path.read_text()  # a reference, not a copy
    finally:
        stop_gateway(gw)


def test_the_env_login_cannot_be_renamed_here(gateway: Gateway) -> None:
    with pytest.raises(CredentialsError, match="rename it there"):
        gateway.run(gateway.service.accounts.rename("env", "work"))


@pytest.mark.gateway_settings(pool=("work", "home"), account_pin="home")
def test_the_snapshot_names_strategy_pin_and_active_account(gateway: Gateway) -> None:
    registry = gateway.service.accounts
    snapshot = registry.snapshot()
    assert (snapshot.strategy, snapshot.pin, snapshot.active) == ("sticky", "home", "home")
    assert snapshot.can_serve and snapshot.pooled == 2
    set_flag(gateway, gateway.pool["home"], suspended=True)
    set_flag(gateway, gateway.pool["work"], quota_exhausted=True)
    gateway.pool["work"].usage = usage_answer(50, 50)
    gateway.run(registry.check("work"))
    with pytest.raises(Exception, match="No Kiro account can serve"):
        ask(gateway, "openai", False)
    snapshot = registry.snapshot()
    assert not snapshot.can_serve
    work, home = snapshot.named("work"), snapshot.named("home")
    assert work is not None and home is not None
    assert work.state == "quota_exhausted" and work.until is not None and work.reason
    assert home.state == "suspended" and home.until is None and home.reason
