"""Service configuration: `OSH_*` environment variables over an optional TOML file (SPEC §5).

Precedence, highest first: explicit arguments, environment variables, the TOML file given with
`--config`, built-in defaults. Secrets are `SecretStr` so they never print.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alerts.health_policy import INTERVAL_MAX_S, INTERVAL_MIN_S, STORM_DEVICES, STORM_WINDOW_S, HealthPolicy
from alerts.policy import DEFAULT_ESCALATE_AFTER_S, AlertPolicy
from alerts.sinks.config import ConsoleConfig, SinksConfig, http_url_problem
from gateway.inventory import DEFAULT_MAX_CHANNELS, DEFAULT_MAX_CHANNELS_PER_SITE, DEFAULT_MAX_SITES
from rules.errors import ConfigError
from rules.types import Severity


class SiteSettings(BaseModel):
    """Per-site settings (TOML `[sites.NAME]`): time zone, shift pattern, limit profile."""

    model_config = ConfigDict(extra="forbid")
    tz: str = "UTC"
    shift_starts: list[str] = Field(default_factory=lambda: ["06:00", "14:00", "22:00"])
    shift_hours: float = Field(default=8.0, gt=0, le=24)
    profile: str | None = None
    devices: list[str] | None = None  # the site's device inventory (None: learned up to max_channels)
    max_channels: int | None = Field(default=None, ge=1)  # default: OSH_MAX_CHANNELS_PER_SITE


class AlertPolicySettings(BaseModel):
    """Alert lifecycle timing (docs/alerts.md); defaults suit a control room."""

    model_config = ConfigDict(extra="forbid")
    escalate_after_s: dict[Severity, float] = Field(default_factory=lambda: dict(DEFAULT_ESCALATE_AFTER_S))
    remind_every_s: float | None = Field(default=900.0, gt=0)
    clear_hold_s: float = Field(default=60.0, ge=0)
    flap_window_s: float = Field(default=600.0, ge=0)

    def policy(self) -> AlertPolicy:
        return AlertPolicy(
            clear_hold_s=self.clear_hold_s,
            flap_window_s=self.flap_window_s,
            escalate_after_s={**DEFAULT_ESCALATE_AFTER_S, **self.escalate_after_s},
            remind_every_s=self.remind_every_s,
        )


class HealthSettings(BaseModel):
    """Sensor-health checks (severity malfunction)."""

    model_config = ConfigDict(extra="forbid")
    offline_k: float = Field(default=3.0, gt=0)  # silent for k x the device's interval = offline
    min_silence_s: float = Field(default=30.0, ge=0)
    default_interval_s: float = Field(default=60.0, gt=0)
    stuck_after_s: float = Field(default=1800.0, gt=0)
    calibration_days: float = Field(default=31.0, gt=0)  # 30 CFR 75.351(n)
    storm_devices: int = Field(default=STORM_DEVICES, ge=1)  # offline devices of a site folded into one alert
    storm_window_s: float = Field(default=STORM_WINDOW_S, gt=0)
    interval_min_s: float = Field(default=INTERVAL_MIN_S, gt=0)  # accepted status interval_s
    interval_max_s: float = Field(default=INTERVAL_MAX_S, gt=0)

    @model_validator(mode="after")
    def _interval_range(self) -> HealthSettings:
        if self.interval_min_s >= self.interval_max_s:
            raise ValueError("interval_min_s must be below interval_max_s")
        return self

    def policy(self) -> HealthPolicy:
        return HealthPolicy(**self.model_dump())  # the field names are HealthPolicy's own


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OSH_", extra="forbid", env_nested_delimiter="__")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_client_id: str = Field(default_factory=lambda: f"oshmon-gw-{socket.gethostname()}"[:64])
    # Scaling: each gateway serves a disjoint set of sites (empty: every site). Exposure state
    # is per channel, so a site must be served by exactly one gateway at a time.
    serve_sites: Annotated[list[str], NoDecode] = Field(default_factory=list)
    topic_prefix: str = "osh"
    store: Literal["sqlite", "influx"] = "sqlite"
    sqlite_path: Path = Path("oshmon.sqlite")
    influx_url: str = "http://127.0.0.1:8086"
    influx_api: Literal["v1", "v2"] = "v1"
    influx_db: str = "oshmon"
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_token: SecretStr | None = None
    influx_user: str | None = None
    influx_password: SecretStr | None = None
    # Spool, alert checkpoint, pseudonym key. Default: never the working directory, always one
    # directory per store (gateway/state_dir.py, docs/durability.md).
    state_dir: Path | None = None
    # Spool writes on disk while the store is unreachable (SPEC §6). false: the broker's
    # persistent session is the only buffer (nothing is acknowledged while the store is down).
    spool: bool = True
    # GET /metrics (Prometheus) and GET /healthz; empty disables (docs/operations.md).
    http_listen: str = "127.0.0.1:9108"
    # The control-room board (`oshmon board`, docs/board.md).
    board_listen: str = "127.0.0.1:8080"
    board_users: Path | None = None  # default: board-users.json in the state directory
    board_public_read: bool = False  # true: alarms readable without signing in (acks still need it)
    board_session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    board_tls_cert: Path | None = None  # with board_tls_key: serve HTTPS (session cookie Secure)
    board_tls_key: Path | None = None
    board_refresh_s: float = Field(default=5.0, gt=0)  # latest values / shift exposures from the store
    pseudonym_key: SecretStr | None = None  # keyed hash for worker ids in reports (default: a random key in state_dir)
    # Limit of quantification of each hazard's instruments (canonical unit), for EN 689 in reports.
    report_loq: dict[str, float] = Field(default_factory=dict)
    profile: str = "eu-mine"  # judges methane and oxygen out of the box (EU limits + US federal CH4/O2/CO2)
    profile_dirs: list[Path] = Field(default_factory=list)
    sites: dict[str, SiteSettings] = Field(default_factory=dict)
    max_age_s: float = Field(default=7 * 86400.0, gt=0)
    max_future_s: float = Field(default=300.0, ge=0)
    max_gap_s: float = Field(default=60.0, gt=0)
    shift_grace_s: float = Field(default=300.0, ge=0)
    batch_max_messages: int = Field(default=2000, ge=1)
    # Bounded resources (gateway/inventory.py): channels per site and sites learned unconfigured.
    max_channels_per_site: int = Field(default=DEFAULT_MAX_CHANNELS_PER_SITE, ge=1)
    max_sites: int = Field(default=DEFAULT_MAX_SITES, ge=1)
    max_channels: int = Field(default=DEFAULT_MAX_CHANNELS, ge=1)
    batch_max_wait_s: float = Field(default=0.005, ge=0)  # bounds alert latency (docs/benchmarks.md)
    retention_days: int = Field(default=400, ge=366)
    # Alert sinks besides MQTT (console, webhook, e-mail), routed per site and severity.
    sinks: SinksConfig = Field(default_factory=lambda: SinksConfig(sinks=[ConsoleConfig(kind="console")]))
    alerts: AlertPolicySettings = Field(default_factory=AlertPolicySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    log_level: str = "INFO"

    @property
    def state_path(self) -> Path:
        """`OSH_STATE_DIR`, else the default state directory of this store (gateway/state_dir.py)."""
        from gateway.state_dir import default_state_dir

        return self.state_dir if self.state_dir is not None else default_state_dir(self)

    @property
    def store_identity(self) -> str:
        """Which store this is, for the alert checkpoint (gateway/state_dir.py); no secrets."""
        from gateway.state_dir import store_identity

        return store_identity(self)

    @field_validator("serve_sites", mode="before")
    @classmethod
    def _sites_list(cls, v: object) -> object:
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("influx_url")
    @classmethod
    def _influx_url(cls, v: str) -> str:
        problem = http_url_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(c in v for c in "+#") or v.startswith("/") or v.endswith("/"):
            raise ValueError("must be a topic prefix without wildcards or leading/trailing '/'")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TOML_PATH.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


_TOML_PATH: dict[str, Path | None] = {"path": None}


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; any problem becomes a ConfigError naming the field."""
    if config is not None and not config.is_file():
        raise ConfigError(f"config file {config} does not exist")
    _TOML_PATH["path"] = config
    try:
        return Settings(**(secret_files() | overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"configuration: {where}: {first['msg'].removeprefix('Value error, ')}") from None
    except ValueError as exc:  # e.g. a TOML syntax error
        raise ConfigError(f"configuration file {config}: {exc}") from None
    finally:
        _TOML_PATH["path"] = None


SECRET_FIELDS = ("influx_token", "influx_password", "pseudonym_key")


def secret_files(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`OSH_INFLUX_TOKEN_FILE=/run/secrets/influx_token` and the like (Docker/systemd secrets):
    the secret is read from the file, never from the environment or the command line."""
    found: dict[str, str] = {}
    for name in SECRET_FIELDS:
        var = f"OSH_{name.upper()}_FILE"
        path = environ.get(var)
        if not path:
            continue
        try:
            found[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{var}={path}: cannot read the secret ({exc.strerror})") from None
        if not found[name]:
            raise ConfigError(f"{var}={path}: the file is empty")
    return found


class MqttTarget(BaseModel):
    host: str
    port: int
    tls: bool
    username: str | None
    password: SecretStr | None


def parse_mqtt_url(url: str) -> MqttTarget:
    """`mqtt://user:pass@host:port` or `mqtts://...` (TLS); the password never appears in errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError("OSH_MQTT_URL must look like mqtt://[user:pass@]host[:port] or mqtts://...")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError("OSH_MQTT_URL has an invalid port") from None
    return MqttTarget(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )
