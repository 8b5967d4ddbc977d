"""Dispatcher: routing, per-sink queues, retries, sink failure as a malfunction alert, intake speed."""

from __future__ import annotations

import asyncio
import time
import tomllib

import pytest
from pydantic import ValidationError

from alerts.lifecycle import AlertBook
from alerts.sinks.base import Delivery, RetryPolicy
from alerts.sinks.config import SinksConfig, build_dispatcher
from alerts.sinks.dispatcher import Dispatcher, Route
from alerts.sinks.webhook import WebhookSink
from alerts.types import AlertEvent, AlertEventKind
from rules.errors import SinkError
from rules.types import RuleKind, Severity
from tests.test_alerts_helpers import GD17, LIMITS, OX2, HookServer, batch, counter_ids, make_registry

T0 = 1_800_000_000.0
FAST = RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.05)


class Recorder:
    """A sink that records deliveries; fails while `fail` is set, or `fail_times` more times."""

    def __init__(self, name: str, fail: bool = False, fail_times: int = 0, delay_s: float = 0.0) -> None:
        self.name = name
        self.fail, self.fail_times, self.delay_s = fail, fail_times, delay_s
        self.got: list[Delivery] = []
        self.attempts = 0
        self.closed = False

    async def send(self, delivery: Delivery) -> None:
        self.attempts += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail or self.fail_times > 0:
            self.fail_times -= 1
            raise SinkError(f"{self.name}: refused")
        self.got.append(delivery)

    async def aclose(self) -> None:
        self.closed = True

    def events(self) -> list[AlertEvent]:
        return [d.event for d in self.got]


def events(n: int = 1, site: str = "kop-1") -> list[AlertEvent]:
    book, reg = AlertBook(id_factory=counter_ids()), make_registry()
    out: list[AlertEvent] = []
    for i in range(n):
        key = GD17.__class__(site, "z", f"d{i}", GD17.hazard)
        rows = [(key, RuleKind.STEL, Severity.ALARM, 120.0, T0 + i)]
        out += book.on_conditions(batch(reg, rows), reg, LIMITS, T0 + i)
    return out


async def wait_for(cond: object, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_routes_by_site_severity_and_event() -> None:
    book, reg = AlertBook(id_factory=counter_ids()), make_registry()
    [co] = book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, Severity.ALARM, 120.0, T0)]), reg, LIMITS, T0)
    [o2] = book.on_conditions(batch(reg, [(OX2, RuleKind.LEVEL, Severity.CRITICAL, 17.0, T0)]), reg, LIMITS, T0)
    ack = book.acknowledge(co.alert_id, "Ana", None, T0 + 1)
    other_site = events(1, site="kop-2")[0]
    everything, crit, site1 = Recorder("mqtt"), Recorder("pager"), Recorder("mail")
    routes = {
        "pager": [Route(severities=frozenset({Severity.CRITICAL}))],
        "mail": [Route(sites=frozenset({"kop-1"}), events=frozenset({AlertEventKind.RAISED}))],
    }
    async with Dispatcher([everything, crit, site1], routes) as d:
        for ev in (co, o2, ack, other_site):
            d.submit(ev)
        assert await d.drain(2.0)
    assert everything.events() == [co, o2, ack, other_site]
    assert crit.events() == [o2]
    assert site1.events() == [co, o2]
    assert everything.closed and crit.closed


async def test_retry_with_backoff_then_success() -> None:
    flaky, book = Recorder("hook", fail_times=2), AlertBook()
    async with Dispatcher([flaky], book=book, retry=FAST) as d:
        [ev] = events()
        d.submit(ev, b"{}")
        assert await d.drain(2.0)
    assert flaky.attempts == 3 and flaky.got == [Delivery(ev, b"{}")]
    assert d.counts["retries:hook"] == 2 and d.counts["delivered:hook"] == 1
    assert book.open_alerts() == []


async def test_final_failure_becomes_malfunction_alert_on_the_other_sinks_and_clears() -> None:
    dead, mqtt = Recorder("ops-hook", fail=True), Recorder("mqtt")
    stored: list[AlertEvent] = []
    book = AlertBook(id_factory=counter_ids("S"))
    async with Dispatcher([dead, mqtt], book=book, on_event=stored.append, retry=FAST, clock=lambda: T0) as d:
        ev1, ev2 = events(2)
        d.submit(ev1)
        d.submit(ev2)
        await wait_for(lambda: d.counts["failed:ops-hook"] == 2)
        assert await d.drain(2.0)
        [alert] = stored  # one alert for the dead sink, not one per undelivered event
        assert (alert.event, alert.severity, alert.rule) == ("raised", Severity.MALFUNCTION, RuleKind.OFFLINE)
        assert (alert.site, alert.zone, alert.device, alert.hazard) == (
            "kop-1",
            "gateway",
            "ops-hook",
            "sink",
        )
        assert alert.message == "Alert delivery via ops-hook failed: ops-hook: refused"
        assert alert.alarm_topic_suffix() == "alarms/gateway/ops-hook/sink/offline"
        assert mqtt.events() == [ev1, ev2, alert]
        assert mqtt.got[-1].retained and b'"state":"active"' in mqtt.got[-1].retained
        assert dead.events() == [] and dead.attempts == 6  # 2 events x 3 attempts, no retry storm
        dead.fail = False
        d.submit(ev1)
        assert await d.drain(2.0)
    assert [e.event for e in stored] == ["raised", "cleared"]
    assert stored[1].message == "Alert delivery via ops-hook works again"
    assert mqtt.got[-1] == Delivery(stored[1], b"")


async def test_full_queue_drops_oldest_and_reports_it() -> None:
    slow = Recorder("slow", delay_s=0.2)
    stored: list[AlertEvent] = []
    book = AlertBook()
    async with Dispatcher([slow], book=book, on_event=stored.append, queue_size=3, clock=lambda: T0) as d:
        evs = events(6)
        for ev in evs:
            d.submit(ev)
        assert d.counts["dropped:slow"] >= 2
        assert stored[0].message.startswith("Alert delivery via slow failed: its queue is full")
        await d.drain(5.0)
    assert slow.events()[-1] == evs[-1]  # newest kept


async def test_dead_webhook_does_not_slow_intake_or_other_sinks() -> None:
    """A webhook that never answers (5 s timeout, retries) must not delay submit() or the MQTT sink."""
    n = 500
    evs = events(n)
    with HookServer(delay_s=30.0) as black_hole:
        hook = WebhookSink("ops-hook", black_hole.url(), "k", timeout_s=5.0)
        mqtt = Recorder("mqtt")
        d = Dispatcher([hook, mqtt], retry=RetryPolicy(max_attempts=5, base_s=1.0, cap_s=10.0))
        await d.__aenter__()
        await asyncio.sleep(0)
        t = time.perf_counter()
        for ev in evs:
            d.submit(ev)
        intake_s = time.perf_counter() - t
        await wait_for(lambda: len(mqtt.got) == n, 2.0)
        other_s = time.perf_counter() - t
        assert d.backlog()["ops-hook"] >= n - 1  # still stuck on the first event
        await d.aclose(drain_timeout_s=0.1)
        black_hole.statuses = [200]
    assert intake_s < 0.25, f"submit() of {n} events took {intake_s:.3f} s"
    assert other_s < 1.0, f"the MQTT sink got all events only after {other_s:.3f} s"


async def test_duplicate_sink_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        Dispatcher([Recorder("a"), Recorder("a")])


def test_config_builds_sinks_and_hides_secrets() -> None:
    raw = tomllib.loads(
        """
        [[sinks]]
        kind = "webhook"
        name = "ops-hook"
        url = "https://hooks.example/T0KEN-abc"
        secret = "hmac-key-xyz"
        routes = [{ severities = ["critical", "malfunction"] }]

        [[sinks]]
        kind = "email"
        name = "safety-mail"
        host = "127.0.0.1"
        sender = "oshmon@mine.example"
        recipients = ["officer@mine.example"]
        username = "oshmon"
        password = "pw-qwerty-123"

        [[sinks]]
        kind = "console"
        """
    )
    cfg = SinksConfig.model_validate(raw)
    for secret in ("T0KEN-abc", "hmac-key-xyz", "pw-qwerty-123"):
        assert secret not in repr(cfg) and secret not in str(cfg)

    async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        return None

    d = build_dispatcher(cfg, mqtt_publish=publish)
    assert list(d.backlog()) == ["mqtt", "ops-hook", "safety-mail", "console"]
    with pytest.raises(ValidationError, match="name"):
        SinksConfig.model_validate({"sinks": [{"kind": "console", "name": "bad/name"}]})
    with pytest.raises(ValidationError, match="extra"):
        SinksConfig.model_validate({"sinks": [{"kind": "webhook", "name": "h", "url": "x", "token": "y"}]})


async def test_run_task_form_with_submit_many_drains_on_stop() -> None:
    sink, stop = Recorder("console"), asyncio.Event()
    d = Dispatcher([sink])
    evs = events(3)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(d.run(stop), name="alert-sinks")
        await asyncio.sleep(0)
        d.submit_many(evs, retained=lambda ev: ev.alert_id.encode())
        stop.set()
    assert sink.got == [Delivery(ev, ev.alert_id.encode()) for ev in evs] and sink.closed
