"""Credential sources (kiro-protocol.md 1.1): every format loads, write-back keeps what it does not know,
discovery follows the documented precedence, and secrets stay out of reprs, logs and errors."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_tray.protocol.errors import CredentialsError
from kiro_tray.upstream.credentials import (
    Credential,
    CredentialStore,
    CredsFileSource,
    EnvSource,
    KeyringSource,
    KiroCliSource,
    KiroIdeSource,
    TenantSource,
    default_kiro_cli_db_paths,
    default_kiro_ide_token_path,
    discover,
    save_login,
)
from kiro_tray.upstream.secret_store import SERVICE, SecretStore

from ..harness import ALLOW_KEYRING_FALLBACK
from ..memory_keyring import MemoryKeyring

REFRESH = "aorRefresh" + "R" * 90
ACCESS = "aoaAccess" + "A" * 90
CLIENT_SECRET = "eyJclientSecret" + "C" * 60
ROTATED = "aorRotated" + "N" * 90
NEW_ACCESS = "aoaNewAccess" + "B" * 90
SECRETS = (REFRESH, ACCESS, CLIENT_SECRET, ROTATED, NEW_ACCESS)
ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEF"
EXPIRES = datetime(2025, 1, 12, 23, 0, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_json(path: Path, data: Mapping[str, Any], file_mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    path.chmod(file_mode)
    return path


def ide_social() -> dict[str, Any]:
    return {
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": "2025-01-12T23:00:00.000Z",
        "profileArn": ARN,
        "authMethod": "social",
        "provider": "Google",
        "region": "us-east-1",
        "ideOnly": {"keep": True},
    }


def ide_idc(client_hash: str = "0123abcd") -> dict[str, Any]:
    return {
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": "2025-01-12T23:00:00.000Z",
        "authMethod": "IdC",
        "provider": "BuilderId",
        "region": "eu-west-1",
        "clientIdHash": client_hash,
    }


def make_cli_db(
    path: Path, rows: Mapping[str, Mapping[str, Any]], state: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO auth_kv VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
        if state is not None:
            conn.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB)")
            conn.executemany(
                "INSERT INTO state VALUES (?, ?)", [(k, json.dumps(v)) for k, v in state.items()]
            )
    return path


def cli_rows(path: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(path)) as conn:
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM auth_kv")}


def cli_token(refresh: str = REFRESH, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": ACCESS,
        "refresh_token": refresh,
        "expires_at": "2025-01-12T23:00:00.123456789Z",
        "region": "us-east-1",
        "scopes": ["codewhisperer:completions"],
        "oauth_flow": "DeviceCode",
        **extra,
    }


REGISTRATION = {"client_id": "client-123", "client_secret": CLIENT_SECRET, "region": "eu-west-1"}


def rotated(credential: Credential) -> Credential:
    return credential.with_tokens(
        access_token=NEW_ACCESS, expires_at=EXPIRES + timedelta(hours=1), refresh_token=ROTATED
    )


# -- in-memory sources --------------------------------------------------------------------------------


def test_env_source_is_a_social_login_kept_in_memory() -> None:
    source = EnvSource(REFRESH, ARN, "eu-central-1")
    credential = source.load()
    assert (source.kind, credential.auth_kind, credential.profile_arn, credential.region) == (
        "env",
        "social",
        ARN,
        "eu-central-1",
    )
    assert credential.refresh_token == REFRESH and credential.access_token is None

    source.save(rotated(credential))
    assert source.load().refresh_token == ROTATED  # the rotated token survives a reload, in memory only


def test_a_ksk_key_is_an_api_key_sent_as_is() -> None:
    credential = EnvSource("ksk_" + "k" * 40, None, "us-east-1").load()
    assert credential.auth_kind == "api_key"
    assert credential.access_token == credential.refresh_token == "ksk_" + "k" * 40
    assert credential.expires_at is None


def test_tenant_source() -> None:
    source = TenantSource(REFRESH)
    assert source.kind == "tenant"
    assert source.load().auth_kind == "social"


@pytest.mark.parametrize("token", ["aorAAAAA...BBBB", "aorAAAA…", "   "])
def test_truncated_or_empty_tokens_are_rejected(token: str) -> None:
    with pytest.raises(CredentialsError, match="REFRESH_TOKEN"):
        EnvSource(token, None, "us-east-1").load()


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1), st.text())
def test_any_token_with_an_ellipsis_is_truncated(head: str, tail: str) -> None:
    with pytest.raises(CredentialsError, match="truncated"):
        TenantSource(head + "..." + tail).load()


# -- JSON files --------------------------------------------------------------------------------------


def test_creds_file_seed_format(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "creds.json", {"refreshToken": REFRESH, "profileArn": ARN, "region": "us-west-2"}
    )
    source = CredsFileSource(path)
    credential = source.load()
    assert source.kind == "creds_file"
    assert (credential.auth_kind, credential.refresh_token, credential.profile_arn, credential.region) == (
        "social",
        REFRESH,
        ARN,
        "us-west-2",
    )
    assert credential.access_token is None and credential.expires_at is None


def test_creds_file_kiro_ide_social_format(tmp_path: Path) -> None:
    credential = CredsFileSource(write_json(tmp_path / "kiro-auth-token.json", ide_social())).load()
    assert credential.auth_kind == "social"
    assert credential.access_token == ACCESS
    assert credential.expires_at == EXPIRES
    assert credential.profile_arn == ARN


def test_idc_login_reads_the_companion_registration(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", ide_idc("0123abcd"))
    write_json(tmp_path / "0123abcd.json", {"clientId": "client-123", "clientSecret": CLIENT_SECRET})
    credential = CredsFileSource(path).load()
    assert credential.auth_kind == "idc"
    assert (credential.client_id, credential.client_secret, credential.region) == (
        "client-123",
        CLIENT_SECRET,
        "eu-west-1",
    )


def test_idc_login_with_inline_client(tmp_path: Path) -> None:
    data = {
        "refreshToken": REFRESH,
        "authMethod": "builder-id",
        "clientId": "c",
        "clientSecret": CLIENT_SECRET,
    }
    credential = CredsFileSource(write_json(tmp_path / "c.json", data)).load()
    assert (credential.auth_kind, credential.client_id, credential.client_secret) == (
        "idc",
        "c",
        CLIENT_SECRET,
    )


def test_idc_login_without_its_registration_names_the_missing_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", ide_idc("feedbeef"))
    with pytest.raises(CredentialsError, match=r"client registration .*feedbeef\.json: file not found"):
        CredsFileSource(path).load()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "file not found"),
        ('{"refreshToken": "' + REFRESH + '",}', "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"profileArn": "x"}', "no refreshToken"),
        ('{"refreshToken": 12}', "refreshToken must be a string"),
        ('{"refreshToken": "aorAB...CD"}', "truncated"),
        ('{"refreshToken": "' + REFRESH + '", "authMethod": "saml"}', "unknown authMethod"),
        ('{"refreshToken": "' + REFRESH + '", "clientIdHash": "../../etc"}', "not a plain file name"),
    ],
)
def test_bad_creds_files_raise_credentials_error_naming_the_file(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "creds.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CredentialsError) as info:
        CredsFileSource(path).load()
    message = str(info.value)
    assert message.startswith(f"KIRO_CREDS_FILE {path}: ")
    assert problem in message
    assert REFRESH not in message and "Traceback" not in message


def test_creds_file_save_keeps_unknown_fields_shape_and_mode(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "creds.json", {"refreshToken": REFRESH, "region": "us-east-1", "note": [1]}, 0o640
    )
    source = CredsFileSource(path)
    credential = source.load()

    source.save(rotated(credential).with_tokens(access_token=NEW_ACCESS, expires_at=EXPIRES, profile_arn=ARN))

    assert json.loads(path.read_text()) == {
        "refreshToken": ROTATED,
        "region": "us-east-1",
        "note": [1],
        "profileArn": ARN,  # learnt from the refresh
    }  # the seed's shape: no access token written into it
    assert mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["creds.json"]
    assert source.load().refresh_token == ROTATED


def test_save_recreates_a_deleted_file_private(tmp_path: Path) -> None:
    path = write_json(tmp_path / "creds.json", {"refreshToken": REFRESH}, 0o644)
    source = CredsFileSource(path)
    credential = source.load()
    path.unlink()
    source.save(rotated(credential))
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"refreshToken": ROTATED}


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = write_json(tmp_path / "real.json", {"refreshToken": REFRESH, "x": 1})
    link = tmp_path / "link.json"
    link.symlink_to(real)
    source = CredsFileSource(link)
    source.save(rotated(source.load()))
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"refreshToken": ROTATED, "x": 1}


def test_kiro_ide_save_updates_tokens_and_expiry_in_place(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", ide_social())
    source = KiroIdeSource(path)
    source.save(rotated(source.load()))

    data = json.loads(path.read_text())
    assert data == {
        **ide_social(),
        "accessToken": NEW_ACCESS,
        "refreshToken": ROTATED,
        "expiresAt": "2025-01-13T00:00:00.000Z",
    }
    assert mode(path) == 0o600
    reloaded = source.load()
    assert (reloaded.access_token, reloaded.expires_at) == (NEW_ACCESS, EXPIRES + timedelta(hours=1))


def test_kiro_ide_source_default_path_and_labels(tmp_path: Path) -> None:
    source = KiroIdeSource(home=tmp_path)
    expected = tmp_path / ".aws" / "sso" / "cache" / "kiro-auth-token.json"
    assert source.path == expected == default_kiro_ide_token_path(tmp_path)
    assert source.kind == "kiro_ide"
    assert source.description == f"Kiro IDE login ({expected})"
    with pytest.raises(CredentialsError, match=f"Kiro IDE login {expected}: file not found"):
        source.load()


# -- kiro-cli SQLite ----------------------------------------------------------------------------------


def test_kiro_cli_social_login(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {"kirocli:social:token": cli_token(profile_arn=ARN)})
    credential = KiroCliSource(db).load()
    assert credential.auth_kind == "social"
    assert (credential.refresh_token, credential.access_token, credential.profile_arn) == (
        REFRESH,
        ACCESS,
        ARN,
    )
    assert credential.expires_at == datetime(2025, 1, 12, 23, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("token_key", "registration_key"),
    [
        ("kirocli:odic:token", "kirocli:odic:device-registration"),
        ("codewhisperer:odic:token", "codewhisperer:odic:device-registration"),
    ],
)
def test_kiro_cli_idc_login_with_registration_and_state_arn(
    tmp_path: Path, token_key: str, registration_key: str
) -> None:
    token = cli_token()
    del token["region"]  # the registration's region is the SSO region then
    db = make_cli_db(
        tmp_path / "data.sqlite3",
        {token_key: token, registration_key: REGISTRATION},
        state={"api.codewhisperer.profile": {"arn": ARN, "profileName": "x"}},
    )
    credential = KiroCliSource(db).load()
    assert credential.auth_kind == "idc"
    assert (credential.client_id, credential.client_secret) == ("client-123", CLIENT_SECRET)
    assert (credential.region, credential.profile_arn) == ("eu-west-1", ARN)


def test_kiro_cli_key_order_and_camel_case(tmp_path: Path) -> None:
    camel = {"refreshToken": REFRESH, "accessToken": ACCESS, "expiresAt": "2025-01-12T23:00:00Z"}
    db = make_cli_db(
        tmp_path / "data.sqlite3",
        {"codewhisperer:odic:token": cli_token("aorOther" + "o" * 90), "kirocli:social:token": camel},
    )
    credential = KiroCliSource(db).load()
    assert (credential.auth_kind, credential.refresh_token, credential.expires_at) == (
        "social",
        REFRESH,
        EXPIRES,
    )


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ({}, "holds no kiro-cli login"),
        ({"kirocli:odic:token": cli_token()}, "without its device registration"),
        ({"kirocli:social:token": cli_token(refresh="aorAB...CD")}, "truncated"),
    ],
)
def test_kiro_cli_problems_name_the_database(tmp_path: Path, rows: dict[str, Any], problem: str) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", rows)
    with pytest.raises(CredentialsError, match=problem) as info:
        KiroCliSource(db).load()
    assert str(info.value).startswith(f"KIRO_CLI_DB_FILE {db}")


def test_kiro_cli_missing_or_foreign_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    with pytest.raises(CredentialsError, match="file not found"):
        KiroCliSource(missing).load()
    assert not missing.exists()  # never created by looking
    not_a_db = tmp_path / "text.sqlite3"
    not_a_db.write_text("hello, this is not sqlite at all " * 10)
    with pytest.raises(CredentialsError, match="cannot be read"):
        KiroCliSource(not_a_db).load()


def test_kiro_cli_save_updates_the_loaded_row_only(tmp_path: Path) -> None:
    other = {"client_id": "client-123", "client_secret": CLIENT_SECRET, "region": "eu-west-1"}
    db = make_cli_db(
        tmp_path / "data.sqlite3",
        {"kirocli:odic:token": cli_token(), "kirocli:odic:device-registration": other},
    )
    db.chmod(0o600)
    source = KiroCliSource(db)
    source.save(rotated(source.load()))

    rows = cli_rows(db)
    assert rows["kirocli:odic:token"] == {
        **cli_token(),
        "access_token": NEW_ACCESS,
        "refresh_token": ROTATED,
        "expires_at": "2025-01-13T00:00:00.000Z",
    }
    assert rows["kirocli:odic:device-registration"] == other
    assert mode(db) == 0o600
    assert KiroCliSource(db).load().refresh_token == ROTATED


def test_kiro_cli_save_mirrors_camel_case_rows(tmp_path: Path) -> None:
    camel = {"refreshToken": REFRESH, "accessToken": ACCESS, "profileArn": "old", "startUrl": "https://x"}
    db = make_cli_db(tmp_path / "data.sqlite3", {"kirocli:social:token": camel})
    source = KiroCliSource(db)
    source.save(
        rotated(source.load()).with_tokens(access_token=NEW_ACCESS, expires_at=EXPIRES, profile_arn=ARN)
    )
    assert cli_rows(db)["kirocli:social:token"] == {
        "refreshToken": ROTATED,
        "accessToken": NEW_ACCESS,
        "profileArn": ARN,
        "startUrl": "https://x",
        "expiresAt": "2025-01-12T23:00:00.000Z",
    }


def test_default_kiro_cli_db_paths_per_os(tmp_path: Path) -> None:
    assert default_kiro_cli_db_paths(tmp_path, system="linux", environ={}) == [
        tmp_path / ".local/share/kiro-cli/data.sqlite3",
        tmp_path / ".local/share/amazon-q/data.sqlite3",
    ]
    assert default_kiro_cli_db_paths(tmp_path, system="darwin", environ={})[0] == (
        tmp_path / "Library/Application Support/kiro-cli/data.sqlite3"
    )
    windows = default_kiro_cli_db_paths(tmp_path, system="win32", environ={"LOCALAPPDATA": "/appdata"})
    assert windows[0] == Path("/appdata/kiro-cli/data.sqlite3")


# -- the app's saved login ----------------------------------------------------------------------------


def test_keyring_source_round_trips_and_mirrors_the_credential(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    source = KeyringSource(SecretStore(tmp_path))
    with pytest.raises(CredentialsError, match="no Kiro login is saved"):
        source.load()

    idc = Credential(
        "idc", refresh_token=REFRESH, region="eu-west-1", client_id="c", client_secret=CLIENT_SECRET
    )
    source.save(idc)
    assert source.load() == idc
    assert memory_keyring.values[(SERVICE, "client_secret")] == CLIENT_SECRET

    social = Credential("social", refresh_token=ROTATED, profile_arn=ARN)
    source.save(social)
    assert source.load() == social
    assert (SERVICE, "client_id") not in memory_keyring.values  # no stale IdC client left behind


@ALLOW_KEYRING_FALLBACK
def test_keyring_source_on_a_machine_without_keyring(tmp_path: Path) -> None:
    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())
    KeyringSource(store).save(Credential("social", refresh_token=REFRESH, profile_arn=ARN))
    assert mode(tmp_path / "secrets.json") == 0o600
    assert KeyringSource(
        SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())
    ).load().refresh_token == (REFRESH)


def test_save_login_replaces_a_saved_idc_login_with_the_pasted_token(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    store = SecretStore(tmp_path)
    KeyringSource(store).save(
        Credential("idc", refresh_token=REFRESH, profile_arn=ARN, client_id="c", client_secret=CLIENT_SECRET)
    )

    save_login(store, refresh_token=f"  {ROTATED}\n", profile_arn=ARN, region="eu-central-1")

    assert KeyringSource(store).load() == Credential(
        "social", refresh_token=ROTATED, profile_arn=ARN, region="eu-central-1"
    )
    assert {name for _, name in memory_keyring.values} == {"refresh_token", "profile_arn", "region"}


@ALLOW_KEYRING_FALLBACK
def test_save_login_forgets_an_unset_profile_arn_and_region(tmp_path: Path) -> None:
    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())  # the secrets file
    save_login(store, refresh_token=REFRESH, profile_arn=ARN, region="eu-west-1")
    save_login(store, refresh_token="ksk_" + "K" * 40, profile_arn=None, region=None)
    assert json.loads((tmp_path / "secrets.json").read_text()) == {"refresh_token": "ksk_" + "K" * 40}
    assert KeyringSource(store).load() == Credential(
        "api_key", refresh_token="ksk_" + "K" * 40, access_token="ksk_" + "K" * 40
    )


@pytest.mark.parametrize("token", ["aorAAAAA...BBBB", "  "])
def test_save_login_rejects_a_truncated_token_before_writing(
    token: str, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    store = SecretStore(tmp_path)
    save_login(store, refresh_token=REFRESH, profile_arn=None, region="us-east-1")
    before = dict(memory_keyring.values)
    with pytest.raises(CredentialsError, match=r"^Refresh token: the refresh token is (empty|truncated)"):
        save_login(store, refresh_token=token, profile_arn=ARN, region="eu-west-1")
    assert memory_keyring.values == before


# -- discovery ---------------------------------------------------------------------------------------


@pytest.fixture
def everything(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A home where every source exists, each with its own refresh token."""
    home = tmp_path / "home"
    store = SecretStore(tmp_path / "config")
    KeyringSource(store).save(Credential("social", refresh_token="aorKeyring" + "k" * 90))
    write_json(default_kiro_ide_token_path(home), {**ide_social(), "refreshToken": "aorIde" + "i" * 90})
    make_cli_db(
        default_kiro_cli_db_paths(home, environ={})[0],
        {"kirocli:social:token": cli_token("aorAuto" + "a" * 90)},
    )
    yield {
        "refresh_token": REFRESH,
        "profile_arn": ARN,
        "region": "us-east-1",
        "creds_file": write_json(tmp_path / "creds.json", {"refreshToken": "aorFile" + "f" * 90}),
        "kiro_cli_db": make_cli_db(
            tmp_path / "cli.sqlite3", {"kirocli:social:token": cli_token("aorDb" + "d" * 90)}
        ),
        "secret_store": store,
        "home": home,
    }


def test_discovery_precedence(everything: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiro_tray")
    order = [
        ("refresh_token", "env", REFRESH),
        ("creds_file", "creds_file", "aorFile"),
        ("secret_store", "keyring", "aorKeyring"),
        ("kiro_cli_db", "kiro_cli", "aorDb"),
        ("ide", "kiro_ide", "aorIde"),
        ("auto_cli", "kiro_cli", "aorAuto"),
    ]
    args = dict(everything)
    home: Path = args["home"]
    for removed, kind, token_start in order:
        source = discover(**args)
        assert source is not None
        assert source.kind == kind
        assert (source.load().refresh_token or "").startswith(token_start)
        if removed == "secret_store":
            args["secret_store"].delete("refresh_token")  # the store stays, with no saved login
        elif removed == "ide":
            default_kiro_ide_token_path(home).unlink()
        elif removed == "auto_cli":
            default_kiro_cli_db_paths(home, environ={})[0].unlink()
        else:
            args[removed] = None
    assert discover(**args) is None

    messages = [r.getMessage() for r in caplog.records]
    assert f"auto-detected Kiro IDE login at {default_kiro_ide_token_path(home)}" in messages
    assert any(m.startswith("auto-detected kiro-cli login at ") for m in messages)
    assert any("no Kiro credentials found" in m for m in messages)


def test_auto_detection_skips_a_kiro_cli_db_without_login(tmp_path: Path) -> None:
    first, legacy = default_kiro_cli_db_paths(tmp_path, environ={})
    make_cli_db(first, {})
    make_cli_db(
        legacy,
        {"codewhisperer:odic:token": cli_token(), "codewhisperer:odic:device-registration": REGISTRATION},
    )
    source = discover(
        refresh_token=None,
        profile_arn=None,
        region="us-east-1",
        creds_file=None,
        kiro_cli_db=None,
        secret_store=None,
        home=tmp_path,
    )
    assert isinstance(source, KiroCliSource)
    assert source.path == legacy


def test_explicit_missing_file_is_chosen_and_fails_on_load(tmp_path: Path) -> None:
    source = discover(
        refresh_token=None,
        profile_arn=None,
        region="us-east-1",
        creds_file=tmp_path / "missing.json",
        kiro_cli_db=None,
        secret_store=None,
        home=tmp_path,
    )
    assert source is not None
    with pytest.raises(CredentialsError, match=r"KIRO_CREDS_FILE .*missing\.json: file not found"):
        source.load()


# -- secrets stay secret -------------------------------------------------------------------------------


@ALLOW_KEYRING_FALLBACK
def test_secrets_never_reach_reprs_logs_or_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiro_tray")
    write_json(tmp_path / "0123abcd.json", {"clientId": "c", "clientSecret": CLIENT_SECRET})
    sources: list[CredentialStore] = [
        EnvSource(REFRESH, ARN, "us-east-1"),
        TenantSource(REFRESH),
        CredsFileSource(write_json(tmp_path / "kiro-auth-token.json", ide_idc())),
        KiroCliSource(
            make_cli_db(
                tmp_path / "d.sqlite3",
                {"kirocli:odic:token": cli_token(), "kirocli:odic:device-registration": REGISTRATION},
            )
        ),
        KeyringSource(SecretStore(tmp_path / "fallback", backend=keyring.backends.fail.Keyring())),
    ]
    sources[-1].save(Credential("idc", refresh_token=REFRESH, client_id="c", client_secret=CLIENT_SECRET))
    texts: list[str] = []
    for source in sources:
        credential = source.load()
        source.save(rotated(credential))
        texts += [repr(source), source.description, repr(credential), repr(source.load())]
    with pytest.raises(CredentialsError) as info:
        CredsFileSource(write_json(tmp_path / "bad.json", {"refreshToken": REFRESH[:20] + "..."})).load()
    texts.append(str(info.value))
    texts += [r.getMessage() for r in caplog.records]

    leaks = [(secret[:12], text) for text in texts for secret in SECRETS if secret in text]
    assert leaks == []
    assert any("secrets are kept in" in t for t in texts)  # the fallback did log, without values


@settings(max_examples=25, deadline=None)
@given(
    token=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Cc"]), min_size=1).filter(
        lambda t: "..." not in t and "…" not in t and not t.startswith("ksk_")
    ),
    expires=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
)
def test_rotated_tokens_round_trip_through_every_file_source(token: str, expires: datetime) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stores: list[CredentialStore] = [
            KiroIdeSource(write_json(root / "ide.json", ide_social())),
            KiroCliSource(make_cli_db(root / "cli.sqlite3", {"kirocli:social:token": cli_token()})),
        ]
        for store in stores:
            store.save(
                store.load().with_tokens(access_token=NEW_ACCESS, expires_at=expires, refresh_token=token)
            )
            again = store.load()
            assert (again.refresh_token, again.expires_at) == (token.strip(), expires)
