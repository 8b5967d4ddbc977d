"""Device status may only worsen health (issue 15 point 2); stale status changes nothing
(issue 13 point 8). Unit tests of `SensorHealth.on_status` and the gateway's status check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alerts.health import SensorHealth
from alerts.health_policy import HealthPolicy
from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from gateway.batching import DecodeLimits, sort_messages
from gateway.mqtt import InboundMessage
from rules.types import ChannelKey, ChannelRegistry, Hazard, ReadingBatch
from tests.test_alerts_helpers import counter_ids

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CO = ChannelKey("kop-1", "north", "gd-17", Hazard.CO)
ONLINE = {"state": "online"}
OFFLINE = {"state": "offline"}


@pytest.fixture
def reg() -> ChannelRegistry:
    r = ChannelRegistry()
    r.id_for(CO)
    return r


def new_health(book: AlertBook | None = None) -> SensorHealth:
    return SensorHealth(book or AlertBook(AlertPolicy(flap_window_s=0.0), counter_ids()), HealthPolicy())


def status(h: SensorHealth, payload: dict[str, object], now: float, retained: bool = False) -> list[str]:
    return [f"{e.event} {e.rule}" for e in h.on_status("kop-1", "north", "gd-17", payload, now, now, retained=retained)]


def reading(reg: ChannelRegistry, t: float) -> ReadingBatch:
    return ReadingBatch(np.array([reg.id_for(CO)], np.int64), np.array([t]), np.array([1.0]))


# ---- issue 15: status may only worsen health ---------------------------------------------------
def test_online_status_never_clears_a_real_offline_alarm(reg: ChannelRegistry) -> None:
    h = new_health()
    h.observe(reading(reg, T0), reg, T0)
    assert [e.rule for e in h.check(T0 + 181)] == ["offline"]  # silent for 3 x 60 s
    assert status(h, ONLINE, T0 + 200) == []
    assert h.book.is_open(h.devices.subjects[0], "offline")  # type: ignore[arg-type]
    assert [f"{e.event} {e.rule}" for e in h.observe(reading(reg, T0 + 210), reg, T0 + 210)] == ["cleared offline"]


def test_online_status_is_no_sign_of_life(reg: ChannelRegistry) -> None:
    """A silent device that keeps saying "online" still goes offline."""
    h = new_health()
    h.observe(reading(reg, T0), reg, T0)
    for k in range(1, 19):
        status(h, ONLINE, T0 + 10 * k)
    assert [e.rule for e in h.check(T0 + 181)] == ["offline"]


def test_out_of_range_interval_and_future_calibration_are_ignored(reg: ChannelRegistry) -> None:
    h = new_health()
    status(h, {"state": "online", "interval_s": 9_999_999}, T0)
    status(h, {"state": "online", "calibrated_on": "2099-01-01"}, T0)
    assert h.counts["bad_interval_s"] == 1 and h.counts["bad_calibrated_on"] == 1
    assert np.isnan(h.devices.interval_s[0]) and np.isnan(h.devices.cal_due_s[0])
    assert [e.rule for e in h.check(T0 + 181)] == ["offline"]  # the default 60 s interval applies


@pytest.mark.parametrize(
    ("meta", "field", "reason"),
    [
        ({"interval_s": 9_999_999}, "interval_s", "interval_s 1e+07 s is outside the accepted 0.1 s to 3600 s"),
        ({"interval_s": 0.01}, "interval_s", "outside the accepted"),
        ({"calibrated_on": "2099-01-01"}, "calibrated_on", "calibrated_on lies in the future"),
        ({"calibrated_on": "2027-01-15T09:00:00Z"}, "calibrated_on", "in the future"),  # 1 h ahead
        ({"t": "yesterday"}, "t", "status: "),
        ({"t": T0 + 3600}, "t", "t is 3600 s in the future"),
    ],
)
def test_gateway_dead_letters_status_metadata_out_of_range(meta: dict[str, object], field: str, reason: str) -> None:
    payload = json.dumps({"state": "offline", **meta}).encode()
    msg = InboundMessage("osh/kop-1/north/gd-17/status", payload, 1, True, 1, 0, T0)
    limits = DecodeLimits("osh", 7 * 86400.0, 300.0, interval_s=(0.1, 3600.0))
    out = sort_messages([msg], ChannelRegistry(), limits, T0)
    [dead] = out.dead
    assert reason in dead.error and dead.topic == msg.topic
    [(_topic, kept, retained)] = out.statuses  # the rest of the status still counts: offline
    assert kept.state == "offline" and retained and field not in kept.model_dump(exclude_none=True)


def test_calibration_dated_today_east_of_utc_is_accepted() -> None:
    payload = json.dumps({"state": "online", "calibrated_on": "2027-01-16"}).encode()  # UTC+14 at T0 + 10 h
    msg = InboundMessage("osh/kop-1/north/gd-17/status", payload, 1, False, 1, 0, T0 + 10 * 3600)
    limits = DecodeLimits("osh", 7 * 86400.0, 300.0, interval_s=(0.1, 3600.0))
    assert sort_messages([msg], ChannelRegistry(), limits, T0 + 10 * 3600).dead == []


# ---- issue 13: stale status --------------------------------------------------------------------
def test_status_older_than_the_newest_reading_changes_nothing(reg: ChannelRegistry) -> None:
    h = new_health()
    h.remember(reading(reg, T0 + 100), reg)  # known from the store (restart replay)
    assert status(h, {**OFFLINE, "t": T0 + 50}, T0 + 200) == []  # a Last Will from before that reading
    assert h.counts["stale_status"] == 1
    assert status(h, {**OFFLINE, "t": T0 + 150}, T0 + 200) == ["raised offline"]
    assert status(h, {**OFFLINE, "t": "2027-01-15T08:02:00Z"}, T0 + 200) == []  # older than the last status


def test_retained_status_applied_before_a_restart_is_old_news(reg: ChannelRegistry) -> None:
    h = new_health()
    assert status(h, OFFLINE, T0, retained=True) == ["raised offline"]
    h.observe(reading(reg, T0 + 10), reg, T0 + 10)  # back, without a new status
    # restart: the alert book (cleared) and the seen statuses come back from the checkpoint
    book = AlertBook.restore(h.book.snapshot(), AlertPolicy(flap_window_s=0.0))
    h2 = new_health(book)
    h2.restore_status_seen(json.loads(json.dumps(h.status_seen_json())))
    assert status(h2, OFFLINE, T0 + 60, retained=True) == []  # redelivered at subscribe: stale
    assert status(h2, OFFLINE, T0 + 70) == ["raised offline"]  # the same words live: a new Last Will
