"""AlertBook: raise, repeat, severity rise, hysteresis clear, flapping, escalation, ack, restart."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from alerts.errors import InvalidAckError, SnapshotError, StaleAckError, UnknownAlertError
from alerts.ids import new_alert_id
from alerts.lifecycle import AlertBook
from alerts.messages import exceed_message, fmt_value
from alerts.policy import AlertPolicy
from alerts.state import AlertSubject
from alerts.types import AlertEventKind
from rules.errors import OshError
from rules.results import ConditionBatch, Direction
from rules.types import RULE_CODE, ChannelRegistry, RuleKind, Severity
from tests.test_alerts_helpers import CO_ACTION, CO_SRC, GD17, LIMITS, OX2, batch, counter_ids, make_registry

T0 = 1_800_000_000.0
STEL, LEVEL = RuleKind.STEL, RuleKind.LEVEL
W, A, C = Severity.WARNING, Severity.ALARM, Severity.CRITICAL
POLICY = AlertPolicy(clear_hold_s=60.0, flap_window_s=600.0, remind_every_s=None)


@pytest.fixture
def book() -> AlertBook:
    return AlertBook(POLICY, id_factory=counter_ids())


@pytest.fixture
def reg() -> ChannelRegistry:
    return make_registry()


def feed(book: AlertBook, reg: ChannelRegistry, *rows: tuple, now: float | None = None) -> list:  # type: ignore[type-arg]
    now = rows[-1][4] if now is None else now
    return book.on_conditions(batch(reg, rows), reg, LIMITS, now)


def test_raise_carries_spec_fields_and_plain_message(book: AlertBook, reg: ChannelRegistry) -> None:
    [ev] = feed(book, reg, (GD17, STEL, A, 112.4, T0))
    assert (ev.event, ev.severity, ev.rule, ev.alert_id) == (AlertEventKind.RAISED, A, STEL, "A0001")
    assert ev.message == "CO 15-min average 112 ppm exceeds the 100 ppm STEL"
    assert (ev.limit_source, ev.action, ev.profile, ev.unit) == (CO_SRC, CO_ACTION, "eu", "ppm")
    assert (ev.value, ev.threshold, ev.since_s, ev.t_s) == (112.4, 100.0, T0, T0)
    wire = ev.to_wire()
    spec_fields = ("alert_id event severity rule site zone device hazard worker value threshold unit t "
                   "since profile limit_source action message").split()  # fmt: skip
    assert all(f in wire for f in spec_fields)
    assert wire["t"] == "2027-01-15T08:00:00Z"


def test_repeats_update_value_and_peak_without_events(book: AlertBook, reg: ChannelRegistry) -> None:
    feed(book, reg, (GD17, STEL, A, 112.0, T0))
    assert feed(book, reg, (GD17, STEL, A, 130.0, T0 + 10)) == []
    assert feed(book, reg, (GD17, STEL, A, 105.0, T0 + 20)) == []
    [a] = book.open_alerts()
    assert (a.value, a.peak, a.since_s, a.last_t_s) == (105.0, 130.0, T0, T0 + 20)


def test_severity_rise_is_an_escalation_of_the_same_alert(book: AlertBook, reg: ChannelRegistry) -> None:
    """Issue 13: a rise is its own event, `escalated` with reason `severity_rise` (one `raised` per id)."""
    [w] = feed(book, reg, (GD17, LEVEL, W, 30.0, T0))
    book.acknowledge(w.alert_id, "Ana", None, T0 + 5)
    [a] = feed(book, reg, (GD17, LEVEL, A, 60.0, T0 + 10))
    assert (a.event, a.severity, a.alert_id, a.threshold, a.since_s) == ("escalated", A, w.alert_id, 50.0, T0)
    assert a.reason == "severity_rise"
    assert (
        a.message == "Rose from warning to alarm: CO 60 ppm exceeds the 50 ppm alarm level" and a.action == "Withdraw"
    )
    assert book.open_alerts()[0].acknowledged_by is None  # a higher severity needs a new ack
    assert feed(book, reg, (GD17, LEVEL, W, 30.0, T0 + 20)) == []  # falling back does not lower it
    assert book.open_alerts()[0].severity is A
    [c] = feed(book, reg, (GD17, LEVEL, C, 250.0, T0 + 30))
    assert (c.severity, c.alert_id, c.event, c.reason) == (C, w.alert_id, "escalated", "severity_rise")
    assert book.counts["raised"] == 1 and book.counts["severity_rises"] == 2 and book.counts["escalated"] == 0


def test_clear_needs_deadband_and_hold_time(book: AlertBook, reg: ChannelRegistry) -> None:
    [r] = feed(book, reg, (GD17, STEL, A, 112.0, T0))
    # 97 ppm: under the limit but inside the 5 % deadband (clear level 95 ppm) → no hold starts
    assert feed(book, reg, (GD17, STEL, None, 97.0, T0 + 10)) == []
    assert feed(book, reg, (GD17, STEL, None, 97.0, T0 + 100)) == []
    assert feed(book, reg, (GD17, STEL, None, 90.0, T0 + 110)) == []  # hold starts
    assert feed(book, reg, (GD17, STEL, None, 96.0, T0 + 150)) == []  # back in the band: hold broken
    assert feed(book, reg, (GD17, STEL, None, 80.0, T0 + 160)) == []  # hold restarts
    assert feed(book, reg, (GD17, STEL, None, 80.0, T0 + 219)) == []
    [c] = feed(book, reg, (GD17, STEL, None, 80.0, T0 + 220))
    assert (c.event, c.alert_id, c.severity, c.t_s, c.since_s) == ("cleared", r.alert_id, A, T0 + 220, T0)
    assert c.message == "CO 15-min average back to 80 ppm (at or below 95 ppm for 60 s): STEL alert cleared"
    assert book.open_alerts() == []


def test_low_direction_uses_min_peak_and_clear_at(book: AlertBook, reg: ChannelRegistry) -> None:
    [r] = feed(book, reg, (OX2, LEVEL, A, 19.2, T0))
    assert r.message == "O2 19.2 %vol is below the 19.5 %vol alarm level"
    feed(book, reg, (OX2, LEVEL, C, 17.5, T0 + 5))
    feed(book, reg, (OX2, LEVEL, None, 19.8, T0 + 10))  # above 19.5 but below clear_at 20.0
    assert book.open_alerts()[0].peak == 17.5
    assert feed(book, reg, (OX2, LEVEL, None, 19.9, T0 + 100)) == []
    feed(book, reg, (OX2, LEVEL, None, 20.5, T0 + 110))
    [c] = feed(book, reg, (OX2, LEVEL, None, 20.6, T0 + 170))
    assert c.event == "cleared" and c.alert_id == r.alert_id


def test_flapping_raises_a_new_alert_and_holds_its_clear(book: AlertBook, reg: ChannelRegistry) -> None:
    """Each alert_id is one episode (`raised` first, `cleared` last); the flap count carries on."""
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0))
    feed(book, reg, (GD17, STEL, None, 50.0, T0 + 10))
    [c] = feed(book, reg, (GD17, STEL, None, 50.0, T0 + 70))
    assert c.event == "cleared"
    [again] = feed(book, reg, (GD17, STEL, A, 101.0, T0 + 200))
    assert (again.event, again.since_s) == ("raised", T0 + 200) and again.alert_id != r.alert_id
    assert "flapping" in again.message and "once" in again.message
    # a flapping alert now clears only after the whole flap window (600 s) below the limit
    feed(book, reg, (GD17, STEL, None, 50.0, T0 + 210))
    assert feed(book, reg, (GD17, STEL, None, 50.0, T0 + 400)) == []
    [c2] = feed(book, reg, (GD17, STEL, None, 50.0, T0 + 810))
    assert c2.event == "cleared" and c2.message.endswith("(at or below 95 ppm for 10 min): STEL alert cleared")
    assert book.counts["flaps"] == 1 and book.counts["raised"] == 2
    # outside the window a new episode is no flap
    [fresh] = feed(book, reg, (GD17, STEL, A, 130.0, T0 + 810 + 601))
    assert fresh.alert_id not in (r.alert_id, again.alert_id) and "flapping" not in fresh.message


def test_escalation_per_severity_ack_stops_it_and_reminders() -> None:
    pol = AlertPolicy(escalate_after_s={Severity.ALARM: 120.0, Severity.CRITICAL: 60.0}, remind_every_s=300.0)
    book, reg = AlertBook(pol, counter_ids()), make_registry()
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0), now=T0 + 1)
    assert book.tick(T0 + 120) == []
    [e] = book.tick(T0 + 121)
    assert (e.event, e.alert_id, e.severity, e.t_s) == ("escalated", r.alert_id, A, T0 + 121)
    assert e.message == "Not acknowledged within 2 min: CO 15-min average 120 ppm exceeds the 100 ppm STEL"
    assert book.tick(T0 + 200) == []
    [e2] = book.tick(T0 + 421)  # reminder after remind_every_s
    assert e2.event == "escalated" and book.open_alerts()[0].escalations == 2
    ack = book.acknowledge(r.alert_id, "  Ana Horvat ", "ventilation fan restarted", T0 + 430)
    assert (ack.event, ack.by, ack.note, ack.t_s) == (
        "acknowledged",
        "Ana Horvat",
        "ventilation fan restarted",
        T0 + 430,
    )
    assert ack.message == "Acknowledged by Ana Horvat: ventilation fan restarted"
    assert book.tick(T0 + 10_000) == []


def test_escalation_default_critical_is_faster_than_warning(reg: ChannelRegistry) -> None:
    book = AlertBook(AlertPolicy(remind_every_s=None), counter_ids())
    feed(book, reg, (GD17, LEVEL, C, 300.0, T0), now=T0)
    feed(book, reg, (OX2, LEVEL, A, 19.0, T0), now=T0)
    assert [e.severity for e in book.tick(T0 + 61)] == [C]
    assert [e.severity for e in book.tick(T0 + 121)] == [A]


def test_acknowledge_errors_are_clear(book: AlertBook, reg: ChannelRegistry) -> None:
    with pytest.raises(UnknownAlertError, match="unknown alert id 'NOPE'") as info:
        book.acknowledge("NOPE", "Ana", None, T0)
    assert isinstance(info.value, OshError)
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0))
    with pytest.raises(InvalidAckError, match="name of the person"):
        book.acknowledge(r.alert_id, "  ", None, T0)
    with pytest.raises(InvalidAckError, match="too long"):
        book.acknowledge(r.alert_id, "Ana", "x" * 5000, T0)


def test_ack_after_clear_is_refused_and_does_not_touch_the_retained_topic(
    book: AlertBook, reg: ChannelRegistry
) -> None:
    """Issue 15: an acknowledgement of a cleared alert is refused (dead letter), not recorded."""
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0))
    feed(book, reg, (GD17, STEL, None, 50.0, T0 + 10))
    [c] = feed(book, reg, (GD17, STEL, None, 50.0, T0 + 80))
    assert book.retained_state(c) == b""
    [r2] = feed(book, reg, (GD17, STEL, A, 120.0, T0 + 700))  # new alert on the same topic (past flap window)
    with pytest.raises(InvalidAckError, match="was cleared at"):
        book.acknowledge(r.alert_id, "Ana", "cause: blasting fumes", T0 + 701)
    doc = orjson.loads(book.retained_state(r2) or b"{}")
    assert doc["alert_id"] == r2.alert_id and doc["state"] == "active"


def test_retained_state_shows_current_state(book: AlertBook, reg: ChannelRegistry) -> None:
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0))
    feed(book, reg, (GD17, STEL, A, 150.0, T0 + 5))
    ack = book.acknowledge(r.alert_id, "Ana", "fan on", T0 + 6)
    doc = orjson.loads(book.retained_state(ack) or b"{}")
    assert doc["state"] == "acknowledged" and doc["acknowledged_by"] == "Ana" and doc["ack_note"] == "fan on"
    assert (doc["value"], doc["peak"], doc["severity"], doc["since"]) == (
        150.0,
        150.0,
        "alarm",
        "2027-01-15T08:00:00Z",
    )
    assert "event" not in doc and r.alarm_topic_suffix() == "alarms/north-adit/gd-17/co/stel"


def test_snapshot_restore_keeps_alerts_and_timers_without_renotifying(book: AlertBook, reg: ChannelRegistry) -> None:
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0), now=T0)
    feed(book, reg, (OX2, LEVEL, A, 19.0, T0), now=T0)
    book.acknowledge(book.open_alerts()[1].alert_id, "Ana", None, T0 + 1)
    data = orjson.loads(orjson.dumps(book.snapshot()))  # must survive JSON
    # after a restart the registry may number channels differently
    reg2 = make_registry(OX2, GD17)
    book2 = AlertBook.restore(data, POLICY, counter_ids("B"))
    assert [a.alert_id for a in book2.open_alerts()] == [a.alert_id for a in book.open_alerts()]
    assert book2.on_conditions(batch(reg2, [(GD17, STEL, A, 125.0, T0 + 30)]), reg2, LIMITS, T0 + 30) == []
    [e] = book2.tick(T0 + 121)  # the un-acked alarm's original deadline (120 s) still holds
    assert (e.event, e.alert_id) == ("escalated", r.alert_id)
    book2.on_conditions(batch(reg2, [(GD17, STEL, None, 50.0, T0 + 200)]), reg2, LIMITS, T0 + 200)
    [c] = book2.on_conditions(batch(reg2, [(GD17, STEL, None, 50.0, T0 + 260)]), reg2, LIMITS, T0 + 260)
    assert (c.event, c.alert_id, c.since_s) == ("cleared", r.alert_id, T0)
    assert book2.counts["raised"] == 2


def test_restore_rejects_bad_snapshots() -> None:
    with pytest.raises(SnapshotError, match="version"):
        AlertBook.restore({"version": 99})
    with pytest.raises(SnapshotError, match="damaged"):
        AlertBook.restore({"version": 1, "open": [{"alert_id": "x"}]})


def test_quiet_batches_are_filtered_without_python_work(book: AlertBook) -> None:
    n = 200_000
    reg = ChannelRegistry()
    for i in range(1000):
        reg.id_for(GD17.__class__("s", "z", f"d{i}", GD17.hazard))
    quiet = ConditionBatch(
        np.arange(n, dtype=np.int64) % 1000, np.full(n, RULE_CODE[STEL], np.int8), np.full(n, -1, np.int8),
        np.full(n, 10.0), np.full(n, 100.0), np.linspace(T0, T0 + 600, n), np.full(n, -1, np.int32),
    )  # fmt: skip
    t = time.perf_counter()
    assert book.on_conditions(quiet, reg, LIMITS, T0) == []
    assert time.perf_counter() - t < 0.5
    # one exceeded row among many quiet ones is found, and then its later quiet rows are too
    sev = quiet.severity.copy()
    sev[n // 2] = Severity.ALARM.rank
    lim = quiet.limit.copy()
    lim[n // 2] = 0
    hot = ConditionBatch(quiet.channel, quiet.rule, sev, quiet.value, quiet.threshold, quiet.t_s, lim)
    events = book.on_conditions(hot, reg, LIMITS, T0)
    assert [e.event for e in events] == ["raised", "cleared"]  # 10 ppm rows after it clear it (hold 60 s)


def test_bad_rows_are_counted_not_fatal(book: AlertBook, reg: ChannelRegistry) -> None:
    b = batch(reg, [(GD17, STEL, A, 120.0, T0)])
    bad = ConditionBatch(b.channel, b.rule, b.severity, b.value, b.threshold, b.t_s, np.array([-1], np.int32))
    assert book.on_conditions(bad, reg, LIMITS, T0) == []
    assert book.counts["skipped_rows"] == 1


def test_health_alerts_raise_once_clear_and_mark_faulty(book: AlertBook) -> None:
    dev = AlertSubject.of(GD17).device_subject()
    [r] = book.raise_health(dev, RuleKind.OFFLINE, t_s=T0, now_s=T0, message="gd-17 is offline (Last Will)")
    assert (r.severity, r.rule, r.hazard, r.event) == (
        Severity.MALFUNCTION,
        RuleKind.OFFLINE,
        "device",
        "raised",
    )
    assert "75.351" in r.limit_source and r.action
    assert book.raise_health(dev, RuleKind.OFFLINE, t_s=T0 + 5, now_s=T0 + 5, message="again") == []
    assert book.is_faulty(GD17) and not book.is_faulty(OX2)
    [c] = book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 100, now_s=T0 + 100, message="gd-17 back online")
    assert (c.event, c.alert_id, c.message) == ("cleared", r.alert_id, "gd-17 back online")
    assert not book.is_faulty(GD17)
    assert book.is_faulty(GD17, T0 + 50, T0 + 3600) and not book.is_faulty(GD17, T0 + 101, T0 + 3600)
    assert book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 101, now_s=T0 + 101, message="x") == []


def test_flapping_health_alert_clears_only_after_the_window(book: AlertBook) -> None:
    dev = AlertSubject.of(GD17).device_subject()
    book.raise_health(dev, RuleKind.OFFLINE, t_s=T0, now_s=T0, message="offline")
    book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 10, now_s=T0 + 10, message="online")
    [again] = book.raise_health(dev, RuleKind.OFFLINE, t_s=T0 + 20, now_s=T0 + 20, message="offline")
    assert "flapping" in again.message
    assert book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 30, now_s=T0 + 30, message="online") == []
    assert book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 300, now_s=T0 + 300, message="online") == []
    [c] = book.clear_health(dev, RuleKind.OFFLINE, t_s=T0 + 630, now_s=T0 + 630, message="online")
    assert c.event == "cleared"


def test_cleared_memory_is_bounded_and_expires() -> None:
    book, reg = AlertBook(AlertPolicy(max_cleared=2, keep_cleared_s=3600), counter_ids()), make_registry()
    ids = []
    for i, dev in enumerate(("a", "b", "c")):
        key = GD17.__class__("s", "z", dev, GD17.hazard)
        [r] = feed(book, reg, (key, STEL, A, 120.0, T0 + i))
        feed(book, reg, (key, STEL, None, 1.0, T0 + i + 1))
        feed(book, reg, (key, STEL, None, 1.0, T0 + i + 100))
        ids.append(r.alert_id)
    with pytest.raises(UnknownAlertError):
        book.acknowledge(ids[0], "Ana", None, T0 + 200)
    with pytest.raises(InvalidAckError, match="cleared"):  # still remembered, as cleared
        book.acknowledge(ids[2], "Ana", None, T0 + 200)
    book.tick(T0 + 200 + 3601)
    with pytest.raises(UnknownAlertError):
        book.acknowledge(ids[2], "Ana", None, T0 + 4000)


def test_default_ids_are_unique_ulids() -> None:
    ids = {new_alert_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 26 and i.isalnum() and i.isupper() for i in ids)


@pytest.mark.parametrize(
    ("rule", "label", "unit", "text"),
    [
        (RuleKind.LEVEL, "", "ppm", "CO 60 ppm exceeds the 50 ppm alarm level"),
        (RuleKind.TWA, "", "ppm", "CO shift average 60 ppm exceeds the 50 ppm 8-h TWA limit"),
        (RuleKind.LEX8H, "", "dBA", "CO daily exposure 60 dBA exceeds the 50 dBA LEX,8h limit"),
        (RuleKind.DOSE, "", "%", "CO dose 60% exceeds the 50% dose limit"),
        (RuleKind.MIXTURE, "", "", "CO mixture index 60 exceeds the 50 mixture limit"),
        (RuleKind.STEL, "EU STEL", "ppm", "CO 15-min average 60 ppm exceeds the 50 ppm EU STEL"),
    ],
)
def test_messages_name_the_figure_and_the_limit(rule: RuleKind, label: str, unit: str, text: str) -> None:
    assert exceed_message("co", rule, Severity.ALARM, 60.0, 50.0, unit, Direction.ABOVE, label) == text


def test_value_formatting() -> None:
    assert [fmt_value(v) for v in (112.4, 12.5, 1.234, 0.054, 0.0, 1500.0, -0.2)] == [
        "112", "12.5", "1.23", "0.054", "0", "1500", "-0.2",
    ]  # fmt: skip


def test_every_event_carries_the_tier_in_force_and_the_worst_value(book: AlertBook, reg: ChannelRegistry) -> None:
    """Issue 13: an O2 (below) alert's worst value is its lowest, and the ack after the rise is critical."""
    [r] = feed(book, reg, (OX2, LEVEL, A, 19.2, T0))
    [rise] = feed(book, reg, (OX2, LEVEL, C, 17.5, T0 + 10))
    feed(book, reg, (OX2, LEVEL, A, 18.5, T0 + 20))
    ack = book.acknowledge(r.alert_id, "Ana", None, T0 + 30)
    assert (r.severity, r.threshold, r.peak) == (A, 19.5, 19.2)
    assert (rise.severity, rise.threshold, rise.limit_source, rise.action) == (C, 18.0, "o2-c", "Evacuate")
    assert (ack.severity, ack.threshold, ack.limit_source, ack.value, ack.peak) == (C, 18.0, "o2-c", 18.5, 17.5)


def test_each_alert_record_is_in_time_order_whatever_the_clocks(book: AlertBook, reg: ChannelRegistry) -> None:
    """A sensor clock ahead of the gateway's (up to max_future_s): the ack is never before the raise."""
    [r] = feed(book, reg, (GD17, STEL, A, 120.0, T0 + 120), now=T0)  # reading stamped 2 min ahead
    ack = book.acknowledge(r.alert_id, "Ana", None, T0 + 30)  # the officer saw it: accepted ...
    assert ack.t_s == T0 + 120  # ... and recorded no earlier than the raise
    [e] = book.tick(T0 + 10_000) or [None]  # acknowledged: no escalation
    assert e is None
    feed(book, reg, (GD17, STEL, None, 50.0, T0 + 50), now=T0 + 200)  # late readings clear it ...
    [c] = feed(book, reg, (GD17, STEL, None, 50.0, T0 + 115), now=T0 + 200)
    assert c.event == "cleared" and c.t_s == ack.t_s  # ... never before the ack in the record
    assert c.message.endswith("(event time 2027-01-15T08:01:55Z; recorded after the alert's previous event)")


def test_an_ack_made_before_the_current_tier_is_refused(book: AlertBook, reg: ChannelRegistry) -> None:
    """The demo's ack at 09:43:44 "before" the critical raise at 10:04:44: it acknowledged a tier it never saw."""
    [r] = feed(book, reg, (GD17, LEVEL, A, 60.0, T0))
    feed(book, reg, (GD17, LEVEL, C, 250.0, T0 + 1200))
    with pytest.raises(StaleAckError, match="rose to critical at 2027-01-15T08:20:00Z, after this acknowledgement"):
        book.acknowledge(r.alert_id, "Ana", None, T0 + 900)  # made before the rise, applied after it
    assert book.open_alerts()[0].acknowledged_by is None  # the critical tier still escalates
    assert book.acknowledge(r.alert_id, "Ana", None, T0 + 1210).severity is C
