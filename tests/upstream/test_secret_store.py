"""SecretStore: the OS keyring when it works, else a visible 0600 file (atomic, never logging values)."""

from __future__ import annotations

import json
import logging
import stat
import tempfile
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked

from kiro_tray.upstream.secret_store import SERVICE, SecretStore, SecretStoreError

from ..harness import ALLOW_KEYRING_FALLBACK
from ..memory_keyring import MemoryKeyring

pytestmark = ALLOW_KEYRING_FALLBACK  # the file fallback is half of what is tested here

SECRET = "sk-secret-" + "s" * 40


class LockedKeyring(KeyringBackend):
    """A keyring that is installed but refuses every call (a locked collection)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the collection is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("the collection is locked")


class BreaksAfterProbe(MemoryKeyring):
    """Works at first, then the user denies access."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("access denied")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keyring_backend_holds_the_secrets(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    store = SecretStore(tmp_path / "config")
    store.set("proxy_api_key", SECRET)

    assert store.get("proxy_api_key") == SECRET
    assert memory_keyring.values[(SERVICE, "proxy_api_key")] == SECRET
    assert store.is_fallback is False
    assert (
        store.backend_description.startswith("OS keyring (") and "MemoryKeyring" in store.backend_description
    )
    assert not (tmp_path / "config").exists()  # nothing written to disk

    store.delete("proxy_api_key")
    store.delete("proxy_api_key")  # deleting a missing entry is fine
    assert store.get("proxy_api_key") is None


def test_without_a_keyring_it_falls_back_visibly_to_a_private_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # the autouse fixture restores the previous one
    caplog.set_level(logging.DEBUG, logger="kiro_tray")
    config = tmp_path / "config"
    store = SecretStore(config)

    assert store.is_fallback is True
    store.set("refresh_token", SECRET)
    store.set("region", "eu-central-1")

    secrets_file = config / "secrets.json"
    assert store.backend_description == f"file {secrets_file} (no OS keyring available)"
    assert mode(config) == 0o700
    assert mode(secrets_file) == 0o600
    assert json.loads(secrets_file.read_text()) == {"refresh_token": SECRET, "region": "eu-central-1"}
    assert [p.name for p in config.iterdir()] == ["secrets.json"]  # no temp file left behind

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per store, however many calls
    assert str(secrets_file) in warnings[0].getMessage()
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SecretStore(config).get("refresh_token") == SECRET  # another instance reads it back

    store.delete("refresh_token")
    assert json.loads(secrets_file.read_text()) == {"region": "eu-central-1"}


@pytest.mark.parametrize(
    "backend", [keyring.backends.null.Keyring(), LockedKeyring()], ids=["null-backend", "error-on-first-use"]
)
def test_unusable_backends_fall_back(tmp_path: Path, backend: KeyringBackend) -> None:
    store = SecretStore(tmp_path, backend=backend)
    store.set("proxy_api_key", SECRET)
    assert store.is_fallback is True
    assert store.get("proxy_api_key") == SECRET
    assert mode(tmp_path / "secrets.json") == 0o600


def test_a_keyring_that_fails_later_raises_without_the_value(tmp_path: Path) -> None:
    store = SecretStore(tmp_path, backend=BreaksAfterProbe())
    assert store.is_fallback is False
    with pytest.raises(SecretStoreError, match="could not write proxy_api_key: KeyringLocked") as info:
        store.set("proxy_api_key", SECRET)
    assert SECRET not in str(info.value)
    assert not (tmp_path / "secrets.json").exists()  # no silent split between two stores


def test_rewrite_tightens_a_loose_existing_file(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"client_id": "kept"}))
    secrets_file.chmod(0o644)
    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())

    store.set("client_secret", SECRET)

    assert mode(secrets_file) == 0o600
    assert json.loads(secrets_file.read_text()) == {"client_id": "kept", "client_secret": SECRET}


def test_a_corrupt_file_is_reported_without_its_content(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text('{"refresh_token": "' + SECRET + '", oops}')
    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())
    with pytest.raises(SecretStoreError, match="is not valid JSON") as info:
        store.get("refresh_token")
    assert SECRET not in str(info.value)


def test_repr_names_the_backend_not_the_values(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("proxy_api_key", SECRET)
    assert SECRET not in repr(store)
    assert repr(store) == f"<SecretStore {store.backend_description}>"


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["proxy_api_key", "refresh_token", "client_secret"]), st.text()))
def test_file_fallback_round_trips_any_text(values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SecretStore(Path(tmp) / "config", backend=keyring.backends.fail.Keyring())
        for name, value in values.items():
            store.set(name, value)
        reopened = SecretStore(Path(tmp) / "config", backend=keyring.backends.fail.Keyring())
        assert {name: reopened.get(name) for name in values} == values
