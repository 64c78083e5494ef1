"""Settings: declarations, precedence, validation, the settings file, and the README's table."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from kiro_tray.settings import (
    DECLARATIONS,
    SETTINGS_FILE_NAME,
    Settings,
    SettingsError,
    load_settings,
    parse_dotenv,
    write_settings_file,
)

from .logfail import ExpectLog

README = Path(__file__).resolve().parents[1] / "README.md"

SEED_DEFAULTS = {
    "PORT": 8000,
    "KIRO_REGION": "us-east-1",
    "FIRST_TOKEN_TIMEOUT": 120,
    "STREAM_READ_TIMEOUT": 300,
    "NON_STREAM_TIMEOUT": 900,
    "MAX_RETRIES": 3,
    "SLOW_MODEL_TIMEOUT_MULTIPLIER": 3.0,
    "LOG_LEVEL": "INFO",
}


def test_seed_variables_keep_their_names_and_defaults() -> None:
    by_env = {s.env: s for s in DECLARATIONS}
    for env, default in SEED_DEFAULTS.items():
        assert by_env[env].default == default
    for env in (
        "PROXY_API_KEY",
        "REFRESH_TOKEN",
        "PROFILE_ARN",
        "KIRO_CREDS_FILE",
        "HOST",
        "KIRO_CLI_DB_FILE",
        "KIRO_API_BASE_URL",
        "KIRO_AUTH_BASE_URL",
        "KIRO_OIDC_BASE_URL",
    ):
        assert env in by_env
    assert by_env["PROXY_API_KEY"].default is None  # no shipped client key


def test_declarations_match_the_settings_dataclass() -> None:
    defaults = Settings()
    for setting in DECLARATIONS:
        assert getattr(defaults, setting.name) == setting.default, setting.name


def test_precedence_defaults_file_dotenv_env_cli(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / SETTINGS_FILE_NAME).write_text(
        json.dumps({"port": 8001, "log_level": "ERROR", "max_retries": 1})
    )
    (tmp_path / ".env").write_text("PORT=8002\nLOG_LEVEL=WARN\n")
    settings = load_settings(cli={"port": "8004"}, environ={"PORT": "8003"}, cwd=tmp_path, config_dir=config)
    assert settings.port == 8004 and settings.origins["port"] == "cli"
    assert settings.log_level == "WARN" and settings.origins["log_level"] == ".env"
    assert settings.max_retries == 1 and settings.origins["max_retries"] == "file"
    assert settings.kiro_region == "us-east-1" and "kiro_region" not in settings.origins
    assert load_settings(environ={"PORT": "8003"}, cwd=tmp_path, config_dir=config).port == 8003


def test_secrets_in_the_settings_file_are_ignored(tmp_path: Path, expected_log: ExpectLog) -> None:
    expected_log(r"^ignoring REFRESH_TOKEN in the settings file: secrets live in the keyring$")
    expected_log(r"^ignoring PROXY_API_KEY in the settings file: secrets live in the keyring$")
    (tmp_path / SETTINGS_FILE_NAME).write_text(
        json.dumps({"refresh_token": "x" * 40, "proxy_api_key": "y" * 20})
    )
    settings = load_settings(environ={}, cwd=tmp_path, config_dir=tmp_path)
    assert settings.refresh_token is None and settings.proxy_api_key is None


def test_settings_file_is_user_only_and_holds_no_secret(tmp_path: Path) -> None:
    settings = Settings(refresh_token="rt-secret-value-123", proxy_api_key="kt-secret-key-456", port=9000)
    path = tmp_path / "cfg" / SETTINGS_FILE_NAME
    write_settings_file(path, settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "secret" not in text and json.loads(text)["port"] == 9000
    assert "rt-secret-value-123" not in repr(settings) and "kt-secret-key-456" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "70000"}, "PORT: 70000 is above the maximum 65535"),
        ({"PORT": "-1"}, "PORT: -1 is below the minimum 0"),
        ({"PORT": "eighty"}, "PORT: 'eighty' is not a whole number"),
        ({"STREAM_READ_TIMEOUT": "0"}, "STREAM_READ_TIMEOUT: 0.0 is below the minimum"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'LOUD' is not one of DEBUG, INFO, WARN, WARNING, ERROR"),
        ({"TRIM_HISTORY": "perhaps"}, "TRIM_HISTORY: 'perhaps' is not true or false"),
        ({"KIRO_API_BASE_URL": "ftp://x"}, "KIRO_API_BASE_URL: 'ftp://x' is not an http(s) URL"),
        ({"KIRO_CREDS_FILE": "/no/such/file.json"}, "KIRO_CREDS_FILE: /no/such/file.json does not exist"),
    ],
)
def test_invalid_values_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env, cwd=tmp_path)
    assert str(caught.value) == message or str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_unreadable_creds_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text("{}")
    creds.chmod(0)
    if os.access(creds, os.R_OK):
        pytest.skip("running as root: every file is readable, so this check cannot fail here")
    with pytest.raises(SettingsError, match=r"KIRO_CREDS_FILE: .* is not readable"):
        load_settings(environ={"KIRO_CREDS_FILE": str(creds)}, cwd=tmp_path)


def test_dotenv_parsing() -> None:
    parsed = parse_dotenv(
        "# comment\nexport PORT=9000\nREFRESH_TOKEN='abc def'\n"
        "LOG_LEVEL=DEBUG # trailing\nEMPTY=\nnot a line\n"
    )
    assert parsed == {"PORT": "9000", "REFRESH_TOKEN": "abc def", "LOG_LEVEL": "DEBUG", "EMPTY": ""}


def test_with_values_validates_and_reports_changes() -> None:
    base = Settings()
    changed = base.with_values(port="9001", log_level="debug")
    assert [s.env for s in changed.changed(base)] == ["PORT", "LOG_LEVEL"]
    with pytest.raises(SettingsError, match="PORT"):
        base.with_values(port=70000)


def test_readme_configuration_table_lists_every_setting() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, flags=re.M))
    assert set(rows) == {s.env for s in DECLARATIONS}
    for setting in DECLARATIONS:
        if setting.default not in (None, ""):
            shown = rows[setting.env].strip().strip("`")
            default = setting.default
            expected = str(default).lower() if isinstance(default, bool) else str(default)
            assert shown in (expected, f"{default:g}" if isinstance(default, float) else expected), (
                setting.env
            )


def test_settings_file_update_writes_only_the_named_settings(tmp_path: Path) -> None:
    path = tmp_path / SETTINGS_FILE_NAME
    path.write_text(json.dumps({"log_level": "ERROR"}))
    from_env = load_settings(environ={"PORT": "9100"}, cwd=tmp_path, config_dir=tmp_path)
    write_settings_file(path, from_env.with_values(max_retries=5), names=["max_retries"])
    assert json.loads(path.read_text()) == {"log_level": "ERROR", "max_retries": 5}  # PORT stays the env's
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
