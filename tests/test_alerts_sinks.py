"""Sinks against real servers: webhook (HTTP server, HMAC), e-mail (aiosmtpd, STARTTLS + login),
MQTT (injected publish), console."""

from __future__ import annotations

import asyncio
import email.policy
import io
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from alerts.lifecycle import AlertBook
from alerts.sinks.base import Delivery
from alerts.sinks.console import ConsoleSink
from alerts.sinks.email import EmailSink
from alerts.sinks.mqtt import MqttSink
from alerts.sinks.webhook import SIGNATURE_HEADER, WebhookSink, verify
from alerts.types import AlertEvent
from rules.errors import SinkError
from rules.types import RuleKind, Severity
from tests.services import free_port
from tests.test_alerts_helpers import GD17, LIMITS, HookServer, batch, counter_ids, dead_port, make_registry

SECRET = "whsec-DO-NOT-LOG-7f3a"
TOKEN_PATH = "/hooks/T0KEN-IN-PATH-91b2"
PASSWORD = "smtp-pass-DO-NOT-LOG-55c1"
T0 = 1_800_000_000.0


def raised_and_cleared() -> tuple[AlertBook, AlertEvent, AlertEvent]:
    book, reg = AlertBook(id_factory=counter_ids()), make_registry()
    [r] = book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, Severity.ALARM, 112.4, T0)]), reg, LIMITS, T0)
    book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, None, 50.0, T0 + 1)]), reg, LIMITS, T0 + 1)
    [c] = book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, None, 50.0, T0 + 90)]), reg, LIMITS, T0 + 90)
    return book, r, c


@pytest.fixture
def event() -> AlertEvent:
    return raised_and_cleared()[1]


# ---- webhook -----------------------------------------------------------------------------------
async def test_webhook_posts_signed_json(event: AlertEvent) -> None:
    with HookServer() as srv:
        sink = WebhookSink("ops-hook", srv.url(TOKEN_PATH), SECRET, timeout_s=2.0)
        await sink.send(Delivery(event))
        await sink.aclose()
    [(path, headers, body)] = srv.requests
    assert path == TOKEN_PATH
    assert headers["Content-Type"] == "application/json"
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    assert verify(SECRET.encode(), body, headers[SIGNATURE_HEADER])
    assert not verify(b"another key", body, headers[SIGNATURE_HEADER])
    assert not verify(SECRET.encode(), body + b" ", headers[SIGNATURE_HEADER])
    assert orjson.loads(body) == event.to_wire()
    assert headers["X-Oshmon-Alert-Id"] == event.alert_id and headers["X-Oshmon-Event"] == "raised"


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)])
async def test_webhook_http_errors(event: AlertEvent, status: int, retryable: bool) -> None:
    with HookServer(statuses=[status]) as srv:
        sink = WebhookSink("ops-hook", srv.url(TOKEN_PATH), SECRET)
        with pytest.raises(SinkError) as info:
            await sink.send(Delivery(event))
        await sink.aclose()
    assert info.value.retryable is retryable
    assert str(info.value) == f"webhook ops-hook: HTTP {status}"


async def test_webhook_dead_and_slow_endpoints_fail_fast_without_secrets(event: AlertEvent) -> None:
    sink = WebhookSink("ops-hook", f"http://127.0.0.1:{dead_port()}{TOKEN_PATH}", SECRET, timeout_s=1.0)
    with pytest.raises(SinkError) as dead:
        await sink.send(Delivery(event))
    await sink.aclose()
    with HookServer(delay_s=1.5) as srv:
        slow = WebhookSink("ops-hook", srv.url(TOKEN_PATH), SECRET, timeout_s=0.3)
        loop = asyncio.get_running_loop()
        t = loop.time()
        with pytest.raises(SinkError, match="no answer within the timeout") as timeout:
            await slow.send(Delivery(event))
        assert loop.time() - t < 1.2
        await slow.aclose()
    for exc in (dead.value, timeout.value):
        assert exc.retryable
        for secret in (SECRET, TOKEN_PATH, "127.0.0.1"):
            assert secret not in str(exc) and secret not in repr(exc)
    assert SECRET not in repr(sink) and TOKEN_PATH not in repr(sink)


# ---- e-mail ------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append((envelope, message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


def authenticator(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"alerts"
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tls_cert: tuple[Path, Path]) -> Iterator[tuple[int, Inbox, ssl.SSLContext]]:
    """A real SMTP server (aiosmtpd) that requires STARTTLS before AUTH, and AUTH before mail."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(tls_cert[1]), str(tls_cert[0]))
    inbox, port = Inbox(), free_port()
    ctl = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
        authenticator=authenticator, auth_required=True, auth_require_tls=True,
    )  # fmt: skip
    ctl.start()
    client_ctx = ssl.create_default_context(cafile=str(tls_cert[1]))
    try:
        yield port, inbox, client_ctx
    finally:
        ctl.stop()


async def test_email_over_starttls_with_login(smtp: tuple[int, Inbox, ssl.SSLContext], event: AlertEvent) -> None:
    port, inbox, ctx = smtp
    sink = EmailSink(
        "safety-mail", "127.0.0.1", port, "oshmon@mine.example", ["officer@mine.example", "ctl@mine.example"],
        username="alerts", password=PASSWORD, tls_context=ctx, timeout_s=5.0,
    )  # fmt: skip
    await sink.send(Delivery(event))
    [(envelope, mail)] = inbox.mails
    assert envelope.rcpt_tos == ["officer@mine.example", "ctl@mine.example"]
    assert mail["Subject"].startswith("[oshmon ALARM raised] kop-1/north-adit/gd-17: CO 15-min average 112 ppm")
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "What to do: Leave the area; ventilate; find the source" in text
    assert f"oshmon ack {event.alert_id}" in text and "Directive (EU) 2017/164" in text
    assert PASSWORD not in text


async def test_email_wrong_password_is_not_retried_and_not_shown(
    smtp: tuple[int, Inbox, ssl.SSLContext], event: AlertEvent
) -> None:
    port, inbox, ctx = smtp
    sink = EmailSink(
        "safety-mail", "127.0.0.1", port, "oshmon@mine.example", ["officer@mine.example"],
        username="alerts", password="wrong-" + PASSWORD, tls_context=ctx, timeout_s=5.0,
    )  # fmt: skip
    with pytest.raises(SinkError, match="login refused") as info:
        await sink.send(Delivery(event))
    assert not info.value.retryable and PASSWORD not in str(info.value) and "alerts" not in str(info.value)
    assert inbox.mails == []


async def test_email_refuses_to_send_without_tls_when_server_lacks_it(event: AlertEvent) -> None:
    inbox, port = Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        sink = EmailSink("safety-mail", "127.0.0.1", port, "a@b.example", ["c@d.example"], timeout_s=5.0)
        with pytest.raises(SinkError, match="e-mail safety-mail"):
            await sink.send(Delivery(event))
    finally:
        ctl.stop()
    assert inbox.mails == []


async def test_email_dead_server_is_retryable(event: AlertEvent) -> None:
    sink = EmailSink("safety-mail", "127.0.0.1", dead_port(), "a@b.example", ["c@d.example"], password=PASSWORD)
    with pytest.raises(SinkError) as info:
        await sink.send(Delivery(event))
    assert info.value.retryable and PASSWORD not in str(info.value)


# ---- MQTT and console --------------------------------------------------------------------------
async def test_mqtt_sink_publishes_event_and_retained_state() -> None:
    _, raised, cleared = raised_and_cleared()
    calls: list[tuple[str, bytes, int, bool]] = []

    async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        calls.append((topic, payload, qos, retain))

    sink = MqttSink(publish, prefix="osh")
    await sink.send(Delivery(raised, b'{"state":"active"}'))
    await sink.send(Delivery(cleared, b""))
    topic = "osh/kop-1/alarms/north-adit/gd-17/co/stel"
    assert [(c[0], c[2], c[3]) for c in calls] == [
        ("osh/kop-1/alerts", 1, False), (topic, 1, True), ("osh/kop-1/alerts", 1, False), (topic, 1, True),
    ]  # fmt: skip
    assert orjson.loads(calls[0][1]) == raised.to_wire() and calls[3][1] == b""

    async def broken(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        raise ConnectionResetError("broker went away")

    with pytest.raises(SinkError, match="mqtt: publish failed") as info:
        await MqttSink(broken).send(Delivery(raised))
    assert info.value.retryable


async def test_console_sink_line(event: AlertEvent) -> None:
    out = io.StringIO()
    await ConsoleSink(stream=out).send(Delivery(event))
    assert out.getvalue() == (
        "2027-01-15T08:00:00Z ALARM raised kop-1/north-adit/gd-17 co stel: "
        "CO 15-min average 112 ppm exceeds the 100 ppm STEL | do: Leave the area; ventilate; find the source "
        f"[{event.alert_id}]\n"
    )


async def test_webhook_bad_url_is_not_retried_and_not_shown(event: AlertEvent) -> None:
    sink = WebhookSink("ops-hook", f"http://[::1{TOKEN_PATH}", SECRET)
    with pytest.raises(SinkError, match="check the URL") as info:
        await sink.send(Delivery(event))
    await sink.aclose()
    assert not info.value.retryable and TOKEN_PATH not in str(info.value)
