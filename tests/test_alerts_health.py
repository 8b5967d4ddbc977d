"""Sensor health: out_of_range, stuck, gap, offline (status + silence), calibration_due."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.health import SensorHealth
from alerts.health_checks import seq_gaps
from alerts.health_meta import DAY_S, parse_calibration
from alerts.health_policy import HealthPolicy
from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from rules.types import ChannelKey, ChannelRegistry, Hazard, ReadingBatch, RuleKind, Severity
from tests.test_alerts_helpers import counter_ids

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CO = ChannelKey("kop-1", "north", "gd-17", Hazard.CO)
CH4 = ChannelKey("kop-1", "north", "gd-17", Hazard.CH4)
NOISE = ChannelKey("kop-1", "north", "nd-3", Hazard.NOISE)
DEV = AlertSubject("kop-1", "north", "gd-17", "device")


@pytest.fixture
def reg() -> ChannelRegistry:
    r = ChannelRegistry()
    for k in (CO, CH4, NOISE):
        r.id_for(k)
    return r


@pytest.fixture
def health() -> SensorHealth:
    book = AlertBook(AlertPolicy(flap_window_s=0.0), counter_ids())
    return SensorHealth(book, HealthPolicy(stuck_after_s=1800.0, gap_clear_s=600.0))


def readings(reg: ChannelRegistry, rows: list[tuple[ChannelKey, float, float]]) -> ReadingBatch:
    return ReadingBatch(
        np.array([reg.id_for(k) for k, _, _ in rows], np.int64),
        np.array([t for _, t, _ in rows], np.float64),
        np.array([v for _, _, v in rows], np.float64),
    )


def kinds(events: list[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(str(e.event), str(e.rule), e.hazard) for e in events]


def test_out_of_range_raises_once_per_channel_and_clears(health: SensorHealth, reg: ChannelRegistry) -> None:
    b = readings(reg, [(CO, T0, 5.0), (CO, T0 + 1, 2500.0), (CO, T0 + 2, 3000.0), (CH4, T0, 0.3)])
    [ev] = health.observe(b, reg, T0)
    assert (ev.event, ev.rule, ev.severity, ev.hazard) == (
        "raised",
        "out_of_range",
        Severity.MALFUNCTION,
        "co",
    )
    assert ev.message == "CO reading 2500 ppm at gd-17 is outside the sensor range -5 ppm to 2000 ppm"
    assert (ev.value, ev.threshold, ev.t_s) == (2500.0, 2000.0, T0 + 1)
    assert health.observe(readings(reg, [(CO, T0 + 3, 2100.0)]), reg, T0) == []  # still open
    assert health.book.is_faulty(CO) and not health.book.is_faulty(CH4)
    [c] = health.observe(readings(reg, [(CO, T0 + 4, 12.0)]), reg, T0)
    assert (c.event, c.alert_id) == ("cleared", ev.alert_id)
    assert health.book.is_faulty(CO, T0, T0 + 10) and not health.book.is_faulty(CO)


def test_stuck_only_on_hazards_that_always_vary(health: SensorHealth, reg: ChannelRegistry) -> None:
    ts = T0 + np.arange(0, 1900, 60.0)
    rows = [(NOISE, float(t), 84.0) for t in ts] + [(CO, float(t), 0.0) for t in ts]
    events = health.observe(readings(reg, rows), reg, T0)
    assert kinds(events) == [("raised", "stuck", "noise")]
    assert events[0].message == "Noise at nd-3 has read 84 dBA without any change for 31 min"
    assert health.observe(readings(reg, [(NOISE, T0 + 2000, 84.0)]), reg, T0) == []
    [c] = health.observe(readings(reg, [(NOISE, T0 + 2060, 86.5)]), reg, T0)
    assert (c.event, c.rule, c.t_s) == ("cleared", "stuck", T0 + 2060)


def test_stuck_across_batches_and_tolerance(reg: ChannelRegistry) -> None:
    pol = HealthPolicy(stuck_after_s=600.0, stuck_tolerance={"noise": 0.05})
    health = SensorHealth(AlertBook(AlertPolicy(), counter_ids()), pol)
    for i in range(10):  # 84.0/84.04 alternating is within the 0.05 dB tolerance
        assert health.observe(readings(reg, [(NOISE, T0 + 60 * i, 84.0 + 0.04 * (i % 2))]), reg, T0) == []
    [ev] = health.observe(readings(reg, [(NOISE, T0 + 600, 84.0)]), reg, T0)
    assert ev.rule == "stuck"


def test_seq_gaps_vectorized_semantics() -> None:
    max_seq = np.full(3, -1, np.int64)
    dev = np.array([0, 0, 0, 0, 0, 1, 1, 1], np.int64)
    seq = np.array([1, 2, 2, 3, 7, 10, 11, -1], np.int64)  # a 4-gas message shares seq 2; -1 = none
    t = np.arange(8, dtype=np.float64)
    [g] = seq_gaps(max_seq, dev, seq, t)
    assert (g.device, g.missing, g.first_missing, g.t_s) == (0, 3, 4, 4.0)
    assert max_seq.tolist() == [7, 11, -1]
    assert seq_gaps(max_seq, np.array([0, 0]), np.array([5, 8]), np.array([9.0, 10.0])) == []  # late 5 ignored
    assert max_seq[0] == 8
    assert seq_gaps(max_seq, np.array([0, 0]), np.array([0, 1]), np.array([11.0, 12.0])) == []  # restart
    assert max_seq[0] == 1
    [g2] = seq_gaps(max_seq, np.array([1]), np.array([15]), np.array([13.0]))
    assert (g2.missing, g2.first_missing) == (3, 12)


def test_gap_alert_accumulates_and_clears_after_quiet_period(health: SensorHealth, reg: ChannelRegistry) -> None:
    b = readings(reg, [(CO, T0, 1.0), (CH4, T0, 0.1), (CO, T0 + 10, 1.0), (CO, T0 + 20, 1.0)])
    [ev] = health.observe(b, reg, T0, seq=np.array([1, 1, 2, 5], np.int64))
    assert (ev.rule, ev.hazard, ev.device, ev.value) == ("gap", "device", "gd-17", 2.0)
    assert ev.message == "gd-17: 2 reading(s) missing (sequence numbers skipped from 3)"
    assert health.observe(readings(reg, [(CO, T0 + 30, 1.0)]), reg, T0, seq=np.array([9])) == []
    [a] = health.book.open_alerts()
    assert a.value == 5.0 and a.peak == 5.0
    assert health.observe(readings(reg, [(CO, T0 + 600, 1.0)]), reg, T0, seq=np.array([10])) == []
    [c] = health.observe(readings(reg, [(CO, T0 + 630, 1.0)]), reg, T0, seq=np.array([11]))
    assert (c.event, c.rule) == ("cleared", "gap")


def test_status_offline_last_will_and_recovery(health: SensorHealth, reg: ChannelRegistry) -> None:
    [ev] = health.on_status("kop-1", "north", "gd-17", {"state": "offline"}, T0, T0)
    assert (ev.rule, ev.hazard, ev.severity, ev.worker) == ("offline", "device", Severity.MALFUNCTION, None)
    assert ev.message == "gd-17 reported offline (status topic / Last Will)"
    assert health.book.is_faulty(CO) and health.book.is_faulty(ChannelKey("kop-1", "north", "gd-17", Hazard.CO, "w1"))
    assert health.check(T0 + 3600) == []  # already offline: no second alert from silence
    [c] = health.observe(readings(reg, [(CO, T0 + 5, 1.0)]), reg, T0 + 5)
    assert (c.event, c.rule, c.message) == ("cleared", "offline", "gd-17 is sending readings again")


def test_silence_longer_than_k_intervals(health: SensorHealth, reg: ChannelRegistry) -> None:
    health.on_status("kop-1", "north", "gd-17", {"state": "online", "interval_s": 10}, T0, T0)
    health.observe(readings(reg, [(CO, T0, 1.0)]), reg, T0)
    assert health.check(T0 + 29) == []
    [ev] = health.check(T0 + 31)
    assert (ev.rule, ev.device, ev.value, ev.threshold) == ("offline", "gd-17", 31.0, 30.0)
    assert ev.message == "gd-17 silent for 31 s (expected a reading every 10 s)"
    assert health.check(T0 + 100) == []
    assert health.on_status("kop-1", "north", "gd-17", {"state": "online"}, T0 + 120, T0 + 120) == []
    [c] = health.observe(readings(reg, [(CO, T0 + 120, 1.0)]), reg, T0 + 120)  # recovery needs readings
    assert c.event == "cleared" and c.message == "gd-17 is sending readings again"
    # nd-3 (default interval 60 s, k = 3) only goes silent after 180 s
    health.observe(readings(reg, [(NOISE, T0 + 120, 80.0)]), reg, T0 + 120)
    assert [e.device for e in health.check(T0 + 299)] == ["gd-17"]  # silent again since T0 + 120
    assert [e.device for e in health.check(T0 + 301)] == ["nd-3"]


def test_calibration_due_after_31_days_and_cleared_by_new_calibration(health: SensorHealth) -> None:
    meta = {"state": "online", "calibrated_on": "2026-12-14"}  # T0 is 2027-01-15: 32 days later
    [ev] = health.on_status("kop-1", "north", "gd-17", meta, T0, T0)
    assert (ev.rule, ev.value, ev.threshold, ev.unit) == ("calibration_due", 32.3, 31.0, "d")
    assert ev.message == "gd-17 calibration overdue: last calibrated 2026-12-14; calibrate at least every 31 days"
    assert "75.351(n)" in ev.limit_source
    assert health.check(T0 + 60) == []
    [c] = health.on_status("kop-1", "north", "gd-17", {"calibrated_on": "2027-01-15T07:00:00Z"}, T0, T0 + 60)
    assert c.event == "cleared" and "next calibration due 2027-02-15" in c.message
    assert [e.rule for e in health.check(T0 + 30 * DAY_S)] == ["offline"]  # silent meanwhile
    assert [e.rule for e in health.check(T0 + 31 * DAY_S)] == ["calibration_due"]


def test_calibration_per_hazard_and_bad_metadata(health: SensorHealth) -> None:
    meta = {"calibrated_on": {"co": "2027-01-10", "ch4": "2026-11-01"}}
    [ev] = health.on_status("kop-1", "north", "gd-17", meta, T0, T0)
    assert "ch4 on 2026-11-01" in ev.message and "co on" not in ev.message
    assert health.on_status("kop-1", "north", "ox-1", {"calibrated_on": "last tuesday"}, T0, T0) == []
    assert health.counts["bad_calibrated_on"] == 1
    with pytest.raises(ValueError, match="calibrated_on"):
        parse_calibration(42)


def test_health_state_survives_book_restore(health: SensorHealth, reg: ChannelRegistry) -> None:
    [ev] = health.on_status("kop-1", "north", "gd-17", {"state": "offline"}, T0, T0)
    book2 = AlertBook.restore(health.book.snapshot(), AlertPolicy(flap_window_s=0.0))
    health2 = SensorHealth(book2)
    assert health2.on_status("kop-1", "north", "gd-17", {"state": "offline"}, T0 + 5, T0 + 5) == []
    [c] = health2.observe(readings(reg, [(CO, T0 + 10, 1.0)]), reg, T0 + 10)
    assert (c.event, c.alert_id) == ("cleared", ev.alert_id)


def test_device_subject_keys_retained_topic() -> None:
    book = AlertBook(id_factory=counter_ids())
    [ev] = book.raise_health(DEV, RuleKind.OFFLINE, t_s=T0, now_s=T0, message="x")
    assert ev.alarm_topic_suffix() == "alarms/north/gd-17/device/offline"
    assert book.retained_state(ev) is not None
