"""Sink configuration (validated with pydantic) and the one function that builds the dispatcher.

TOML shape (the gateway's config loader hands the `[alerts]` table to `SinksConfig`):

    [[alerts.sinks]]
    kind = "webhook"
    name = "ops-hook"
    url = "https://hooks.example/T0KEN"      # SecretStr: URLs often carry a token
    secret = "..."                           # HMAC key; or from an OSH_* variable
    routes = [{ severities = ["alarm", "critical", "malfunction"] }]

    [[alerts.sinks]]
    kind = "email"
    name = "safety-mail"
    host = "smtp.example"; port = 587; sender = "oshmon@mine.example"
    recipients = ["officer@mine.example"]; username = "oshmon"; password = "..."
    routes = [{ sites = ["kop-1"], events = ["raised", "escalated"] }]

Secrets are `SecretStr`: `repr()`/`str()` of the config show `**********`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alerts.lifecycle import AlertBook
from alerts.sinks.base import RetryPolicy, Sink
from alerts.sinks.console import ConsoleSink
from alerts.sinks.dispatcher import Dispatcher, Route
from alerts.sinks.email import EmailSink
from alerts.sinks.mqtt import MqttSink, Publish
from alerts.sinks.webhook import WebhookSink
from alerts.types import AlertEvent, AlertEventKind
from rules.types import Severity

SinkName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)  # URLs and passwords


class RouteConfig(_Strict):
    sites: list[str] | None = None
    severities: list[Severity] | None = None
    events: list[AlertEventKind] | None = None

    def route(self) -> Route:
        return Route(
            frozenset(self.sites) if self.sites is not None else None,
            frozenset(self.severities) if self.severities is not None else None,
            frozenset(self.events) if self.events is not None else None,
        )


class ConsoleConfig(_Strict):
    kind: Literal["console"]
    name: SinkName = "console"
    routes: list[RouteConfig] = []


class WebhookConfig(_Strict):
    kind: Literal["webhook"]
    name: SinkName
    url: SecretStr
    secret: SecretStr | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    routes: list[RouteConfig] = []

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        problem = http_url_problem(url.get_secret_value())
        if problem:
            raise ValueError(problem)
        return url


def http_url_problem(raw: str) -> str | None:
    """Why `raw` is not a usable http(s) URL, or None. Checked at start-up (a bad URL is a
    configuration error, not an endpoint to retry as "unreachable" forever); the URL itself,
    which often carries a token, is never repeated."""
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "is not a valid URL (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = repr(parts.scheme[:10]) if parts.scheme else "none"
        return f"must start with https:// (or http://), not scheme {scheme}"
    if not parts.hostname:
        return "has no host name (e.g. https://host.example/...)"
    return None


_ADDRESS = r"^[^@\s<>,;]+@[^@\s<>,;]+$"  # one plain address; no CR/LF (header injection), no lists


class EmailConfig(_Strict):
    kind: Literal["email"]
    name: SinkName
    host: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.:\[\]_-]+$")
    port: int = Field(587, ge=1, le=65535)
    sender: str = Field(pattern=_ADDRESS)
    recipients: list[Annotated[str, Field(pattern=_ADDRESS)]] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    cafile: str | None = None  # extra CA for a private mail server
    timeout_s: float = Field(10.0, gt=0, le=300)
    routes: list[RouteConfig] = []


class RetryConfig(_Strict):
    max_attempts: int = Field(5, ge=1, le=100)
    base_s: float = Field(0.5, gt=0)
    cap_s: float = Field(30.0, gt=0)


class SinksConfig(_Strict):
    sinks: list[Annotated[ConsoleConfig | WebhookConfig | EmailConfig, Field(discriminator="kind")]] = []
    retry: RetryConfig = RetryConfig()
    queue_size: int = Field(1000, ge=1)


def _make(cfg: ConsoleConfig | WebhookConfig | EmailConfig) -> Sink:
    if isinstance(cfg, ConsoleConfig):
        return ConsoleSink(cfg.name)
    if isinstance(cfg, WebhookConfig):
        key = cfg.secret.get_secret_value() if cfg.secret else None
        return WebhookSink(cfg.name, cfg.url.get_secret_value(), key, timeout_s=cfg.timeout_s)
    tls = ssl.create_default_context(cafile=cfg.cafile) if cfg.cafile else None
    return EmailSink(
        cfg.name, cfg.host, cfg.port, cfg.sender, cfg.recipients, username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None, starttls=cfg.starttls,
        tls_context=tls, timeout_s=cfg.timeout_s,
    )  # fmt: skip


def build_dispatcher(
    cfg: SinksConfig, *, mqtt_publish: Publish | None = None, topic_prefix: str = "osh",
    book: AlertBook | None = None, on_event: Callable[[AlertEvent], None] | None = None,
) -> Dispatcher:  # fmt: skip
    """The configured sinks, plus the MQTT sink (named `mqtt`, every event) when `mqtt_publish` is given."""
    sinks: list[Sink] = [_make(c) for c in cfg.sinks]
    routes = {c.name: [r.route() for r in c.routes] for c in cfg.sinks if c.routes}
    if mqtt_publish is not None:
        sinks.insert(0, MqttSink(mqtt_publish, prefix=topic_prefix))
    retry = RetryPolicy(cfg.retry.max_attempts, cfg.retry.base_s, cfg.retry.cap_s)
    return Dispatcher(sinks, routes, book=book, on_event=on_event, retry=retry, queue_size=cfg.queue_size)
