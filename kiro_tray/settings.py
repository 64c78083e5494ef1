"""Settings, declared once as data.

Each :class:`Setting` carries its type, default, environment name, help text, group and how a change is
applied; the CLI flags and the settings window are generated from :data:`DECLARATIONS`. Nothing is read at
import time: :func:`load_settings` builds a :class:`Settings` from, in rising precedence,
defaults < settings file (platform config dir) < ``.env`` in the working directory < environment < CLI.

Secrets (``PROXY_API_KEY``, ``REFRESH_TOKEN``) are accepted from ``.env``, the environment and the CLI,
but never read from or written to the settings file: the app keeps them in the OS keyring.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from . import atomic

log = logging.getLogger("kiro_tray.settings")

SETTINGS_FILE_NAME = "settings.json"
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")
ACCOUNT_STRATEGIES = ("STICKY", "ROUND-ROBIN", "LEAST-USED")

Applies = Literal["restart_server", "reset_credentials", "live", "next_request"]
Kind = Literal["str", "int", "float", "bool", "path", "choice", "url"]


class SettingsError(ValueError):
    """An invalid setting. ``str()`` is one line naming the variable and the problem."""

    def __init__(self, env: str, problem: str) -> None:
        super().__init__(f"{env}: {problem}")
        self.env = env
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    env: str
    kind: Kind
    default: Any
    help: str
    group: str
    applies: Applies = "next_request"
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


DECLARATIONS: tuple[Setting, ...] = (
    # Server
    Setting(
        "host",
        "HOST",
        "str",
        "127.0.0.1",
        "Address to listen on (keep 127.0.0.1 unless you know why).",
        "Server",
        "restart_server",
    ),
    Setting(
        "port",
        "PORT",
        "int",
        8000,
        "Port to listen on (0 picks a free one).",
        "Server",
        "restart_server",
        minimum=0,
        maximum=65535,
    ),
    Setting(
        "proxy_api_key",
        "PROXY_API_KEY",
        "str",
        None,
        "Key clients must send (Bearer or x-api-key). Generated on first run when unset.",
        "Server",
        "live",
        secret=True,
    ),
    Setting(
        "allow_remote",
        "ALLOW_REMOTE",
        "bool",
        False,
        "Headless: listen on a non-loopback HOST even with a client key generated on this start.",
        "Server",
        "live",
    ),
    Setting(
        "cors_origins",
        "CORS_ORIGINS",
        "str",
        "",
        "Comma-separated browser origins allowed by CORS; empty turns CORS off.",
        "Server",
        "restart_server",
    ),
    Setting(
        "max_body_mb",
        "MAX_BODY_MB",
        "float",
        32.0,
        "Largest request body accepted, in MB.",
        "Server",
        "restart_server",
        minimum=0.001,
        maximum=1024,
    ),
    Setting(
        "max_tenants",
        "MAX_TENANTS",
        "int",
        64,
        "Multi-tenant mode: how many per-user token managers to keep (least recently used go first).",
        "Server",
        "live",
        minimum=1,
        maximum=100_000,
    ),
    # Credentials
    Setting(
        "refresh_token",
        "REFRESH_TOKEN",
        "str",
        None,
        "Kiro refresh token.",
        "Credentials",
        "reset_credentials",
        secret=True,
    ),
    Setting(
        "profile_arn",
        "PROFILE_ARN",
        "str",
        None,
        "AWS CodeWhisperer profile ARN.",
        "Credentials",
        "reset_credentials",
    ),
    Setting(
        "kiro_region",
        "KIRO_REGION",
        "str",
        "us-east-1",
        "AWS region of the Kiro API.",
        "Credentials",
        "reset_credentials",
    ),
    Setting(
        "kiro_creds_file",
        "KIRO_CREDS_FILE",
        "path",
        None,
        "Credentials JSON file (this gateway's format or the Kiro IDE's kiro-auth-token.json).",
        "Credentials",
        "reset_credentials",
    ),
    Setting(
        "kiro_cli_db_file",
        "KIRO_CLI_DB_FILE",
        "path",
        None,
        "kiro-cli SQLite database (data.sqlite3); found automatically when unset.",
        "Credentials",
        "reset_credentials",
    ),
    Setting(
        "kiro_accounts_file",
        "KIRO_ACCOUNTS_FILE",
        "path",
        None,
        "JSON list of Kiro accounts (credentials-file entries plus name and enabled) for the pool.",
        "Accounts",
        "reset_credentials",
    ),
    Setting(
        "account_strategy",
        "ACCOUNT_STRATEGY",
        "choice",
        "STICKY",
        "How requests pick an account: sticky (one until it fails), round-robin, or least-used.",
        "Accounts",
        "live",
        choices=ACCOUNT_STRATEGIES,
    ),
    Setting(
        "account_pin",
        "ACCOUNT_PIN",
        "str",
        "",
        "Name of the account every request uses while it is available; empty: automatic.",
        "Accounts",
        "live",
    ),
    Setting(
        "usage_poll_minutes",
        "USAGE_POLL_MINUTES",
        "float",
        10.0,
        "Minutes between two quota checks of each account; 0 checks only on request (accounts check).",
        "Accounts",
        "reset_credentials",
        minimum=0,
        maximum=1440,
    ),
    # Upstream
    Setting(
        "kiro_api_base_url",
        "KIRO_API_BASE_URL",
        "url",
        "https://q.{region}.amazonaws.com",
        "Kiro API base URL ({region} is replaced).",
        "Upstream",
        "reset_credentials",
    ),
    Setting(
        "kiro_auth_base_url",
        "KIRO_AUTH_BASE_URL",
        "url",
        "https://prod.{region}.auth.desktop.kiro.dev",
        "Kiro desktop token refresh base URL.",
        "Upstream",
        "reset_credentials",
    ),
    Setting(
        "kiro_oidc_base_url",
        "KIRO_OIDC_BASE_URL",
        "url",
        "https://oidc.{region}.amazonaws.com",
        "AWS SSO OIDC base URL (Builder ID / Identity Center refresh).",
        "Upstream",
        "reset_credentials",
    ),
    Setting(
        "kiro_management_base_url",
        "KIRO_MANAGEMENT_BASE_URL",
        "url",
        "https://management.{region}.kiro.dev",
        "Kiro management base URL (usage limits when the API host does not answer them).",
        "Upstream",
        "reset_credentials",
    ),
    Setting(
        "first_token_timeout",
        "FIRST_TOKEN_TIMEOUT",
        "float",
        120.0,
        "Seconds to wait for the first token before retrying.",
        "Timeouts",
        minimum=0.001,
    ),
    Setting(
        "stream_read_timeout",
        "STREAM_READ_TIMEOUT",
        "float",
        300.0,
        "Seconds allowed between two chunks of a stream.",
        "Timeouts",
        minimum=0.001,
    ),
    Setting(
        "non_stream_timeout",
        "NON_STREAM_TIMEOUT",
        "float",
        900.0,
        "Total seconds allowed for a non-streaming request.",
        "Timeouts",
        minimum=0.001,
    ),
    Setting(
        "max_retries",
        "MAX_RETRIES",
        "int",
        3,
        "Retries for throttling, 5xx and network errors.",
        "Timeouts",
        minimum=0,
        maximum=20,
    ),
    Setting(
        "slow_model_timeout_multiplier",
        "SLOW_MODEL_TIMEOUT_MULTIPLIER",
        "float",
        3.0,
        "Timeout multiplier for slow models (Opus).",
        "Timeouts",
        minimum=1.0,
        maximum=100.0,
    ),
    Setting(
        "payload_budget_bytes",
        "PAYLOAD_BUDGET_BYTES",
        "int",
        600_000,
        "Largest request sent to Kiro; older turns are trimmed above it.",
        "Upstream",
        minimum=10_000,
        maximum=100_000_000,
    ),
    Setting(
        "trim_history",
        "TRIM_HISTORY",
        "bool",
        True,
        "Trim the oldest turns to fit the payload budget (off: refuse with a context error).",
        "Upstream",
    ),
    # Responses API
    Setting(
        "responses_store_max_items",
        "RESPONSES_STORE_MAX_ITEMS",
        "int",
        1000,
        "Stored responses kept for previous_response_id (least recently used evicted; 0: store none).",
        "Responses API",
        "restart_server",
        minimum=0,
        maximum=1_000_000,
    ),
    Setting(
        "responses_store_max_mb",
        "RESPONSES_STORE_MAX_MB",
        "float",
        64.0,
        "Megabytes the stored responses may take in memory.",
        "Responses API",
        "restart_server",
        minimum=0.0,
        maximum=100_000.0,
    ),
    Setting(
        "responses_store_persist",
        "RESPONSES_STORE_PERSIST",
        "bool",
        False,
        "Keep stored responses across restarts (a file readable only by you in the data directory).",
        "Responses API",
        "restart_server",
    ),
    # Logging
    Setting("log_level", "LOG_LEVEL", "choice", "INFO", "Log level.", "Logging", "live", choices=LOG_LEVELS),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in DECLARATIONS}
BY_ENV: Mapping[str, Setting] = {s.env: s for s in DECLARATIONS}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    proxy_api_key: str | None = field(default=None, repr=False)
    allow_remote: bool = False
    cors_origins: str = ""
    max_body_mb: float = 32.0
    max_tenants: int = 64
    refresh_token: str | None = field(default=None, repr=False)
    profile_arn: str | None = None
    kiro_region: str = "us-east-1"
    kiro_creds_file: Path | None = None
    kiro_cli_db_file: Path | None = None
    kiro_accounts_file: Path | None = None
    account_strategy: str = "STICKY"
    account_pin: str = ""
    usage_poll_minutes: float = 10.0
    kiro_api_base_url: str = "https://q.{region}.amazonaws.com"
    kiro_auth_base_url: str = "https://prod.{region}.auth.desktop.kiro.dev"
    kiro_oidc_base_url: str = "https://oidc.{region}.amazonaws.com"
    kiro_management_base_url: str = "https://management.{region}.kiro.dev"
    first_token_timeout: float = 120.0
    stream_read_timeout: float = 300.0
    non_stream_timeout: float = 900.0
    max_retries: int = 3
    slow_model_timeout_multiplier: float = 3.0
    payload_budget_bytes: int = 600_000
    trim_history: bool = True
    responses_store_max_items: int = 1000
    responses_store_max_mb: float = 64.0
    responses_store_persist: bool = False
    log_level: str = "INFO"
    #: Where each non-default value came from ("file", ".env", "env", "cli"), for the UI and /health.
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def url_for(self, template: str, region: str | None = None) -> str:
        return template.replace("{region}", region or self.kiro_region).rstrip("/")

    @property
    def api_base_url(self) -> str:
        return self.url_for(self.kiro_api_base_url)

    @property
    def python_log_level(self) -> int:
        return logging.WARNING if self.log_level == "WARN" else logging.getLevelName(self.log_level)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    def changed(self, other: Settings) -> tuple[Setting, ...]:
        """Declarations whose values differ between ``self`` and ``other``."""
        return tuple(s for s in DECLARATIONS if getattr(self, s.name) != getattr(other, s.name))

    def with_values(self, **values: Any) -> Settings:
        parsed = {name: parse_value(BY_NAME[name], value) for name, value in values.items()}
        result = replace(self, **parsed)
        validate(result)
        return result

    def public_dict(self) -> dict[str, Any]:
        """Every non-secret setting (for the settings file and display)."""
        return {
            s.name: (str(v) if isinstance(v := getattr(self, s.name), Path) else v)
            for s in DECLARATIONS
            if not s.secret
        }


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(setting: Setting, raw: Any) -> Any:
    """Convert a raw value (string from env/.env/CLI, or JSON value from the file) to the setting's type."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "" and setting.kind not in ("str", "choice"):
            return None
    try:
        match setting.kind:
            case "int":
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                return int(raw)
            case "float":
                if isinstance(raw, bool):
                    raise ValueError
                return float(raw)
            case "bool":
                if isinstance(raw, bool):
                    return raw
                text = str(raw).lower()
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
                raise ValueError
            case "path":
                return Path(str(raw)).expanduser()
            case "choice":
                return str(raw).upper()
            case "str" | "url":
                return str(raw) or None if setting.secret else str(raw)
    except (TypeError, ValueError):
        pass
    expected = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
        setting.kind, "text"
    )
    raise SettingsError(setting.env, f"{raw!r} is not {expected}")


def validate(settings: Settings) -> None:
    for setting in DECLARATIONS:
        value = getattr(settings, setting.name)
        if value is None:
            continue
        if setting.kind in ("int", "float"):
            if setting.minimum is not None and value < setting.minimum:
                raise SettingsError(setting.env, f"{value} is below the minimum {setting.minimum:g}")
            if setting.maximum is not None and value > setting.maximum:
                raise SettingsError(setting.env, f"{value} is above the maximum {setting.maximum:g}")
        if setting.choices and value not in setting.choices:
            raise SettingsError(setting.env, f"{value!r} is not one of {', '.join(setting.choices)}")
        if setting.kind == "url" and not str(value).startswith(("http://", "https://")):
            raise SettingsError(setting.env, f"{value!r} is not an http(s) URL")
        if setting.kind == "path" and setting.name in ("kiro_creds_file", "kiro_accounts_file"):
            _check_readable(setting, value)


def _check_readable(setting: Setting, path: Path) -> None:
    if not path.exists():
        raise SettingsError(setting.env, f"{path} does not exist")
    if not path.is_file():
        raise SettingsError(setting.env, f"{path} is not a file")
    if not os.access(path, os.R_OK):
        raise SettingsError(setting.env, f"{path} is not readable")


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments, ``export`` prefixes and matching quotes are understood."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def read_settings_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError("settings file", f"{path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError("settings file", f"{path} does not hold a JSON object")
    return data


def write_settings_file(path: Path, settings: Settings, *, names: Iterable[str] | None = None) -> None:
    """Atomically write non-secret settings, readable by the user only (:mod:`kiro_tray.atomic`, which
    also removes temp files an interrupted earlier write left behind).

    With ``names``, only those settings are written over what the file already holds (the settings window
    passes what the user changed, so values that came from the environment or the command line are not
    frozen into the file); without, every non-secret setting is written."""
    values = settings.public_dict()
    if names is not None:
        wanted = set(names)
        current = read_settings_file(path)
        current.update({k: v for k, v in values.items() if k in wanted})
        values = current
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, values, sort_keys=True)


def load_settings(
    *,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """Merge every layer and validate. Raises :class:`SettingsError` (one line) on any bad value."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def apply(layer: Mapping[str, Any], origin: str, by_env: bool) -> None:
        for key, raw in layer.items():
            setting = BY_ENV.get(key) if by_env else BY_NAME.get(key)
            if setting is None:
                continue
            if origin == "file" and setting.secret:
                log.warning("ignoring %s in the settings file: secrets live in the keyring", setting.env)
                continue
            value = parse_value(setting, raw)
            if value is None and origin != "cli":
                continue
            values[setting.name] = value
            origins[setting.name] = origin

    if config_dir is not None:
        apply(read_settings_file(config_dir / SETTINGS_FILE_NAME), "file", by_env=False)
    dotenv = (cwd or Path.cwd()) / ".env"
    if dotenv.is_file():
        try:
            apply(parse_dotenv(dotenv.read_text(encoding="utf-8")), ".env", by_env=True)
        except OSError as exc:
            raise SettingsError(".env", f"{dotenv} cannot be read: {exc}") from exc
    apply(environ if environ is not None else os.environ, "env", by_env=True)
    if cli:
        apply({k: v for k, v in cli.items() if v is not None}, "cli", by_env=False)
    names = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in values.items() if k in names}, origins=origins)
    validate(settings)
    return settings
