"""Simulators: wire shapes (checked by an independent checker and by the gateway codec),
determinism, event-time order, realistic baselines, and incidents that cross their thresholds."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import orjson
import pytest

from simulators import (
    SCENARIO_NAMES,
    BlastingFumes,
    MethaneRise,
    MineSpec,
    Scenario,
    SimMessage,
    apaced,
    live_start,
    paced,
    scenario,
    simulate,
)

MONDAY_05H = 1795410000.0  # 2026-11-23T05:00:00Z: covers the 06:00 shift change
_L = r"[A-Za-z0-9_.-]{1,64}"
TOPIC = re.compile(rf"^osh/({_L})/({_L})/({_L})/(data|status)$")
FACTOR = {  # unit → factor to the canonical unit (SPEC §2.1 table), written out independently
    "ch4": {"%vol": 1.0, "ppm": 1e-4},
    **{h: {"ppm": 1.0, "ppb": 1e-3} for h in ("co", "h2s", "no2", "no", "so2")},
    "co2": {"ppm": 1.0, "%vol": 1e4},
    "o2": {"%vol": 1.0},
    **{h: {"mg/m3": 1.0, "ug/m3": 1e-3} for h in ("respirable_dust", "silica", "dpm")},
    "noise": {"dBA": 1.0},
    "noise_peak": {"dBC": 1.0},
}
TAGS = {"worker", "seq"}


@dataclass
class Run:
    start: float
    end: float
    messages: list[SimMessage]
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]  # (site/zone/device, hazard) → t, v
    shapes: set[str]


def _time(x: object) -> float:
    if isinstance(x, str):
        dt = datetime.fromisoformat(x)
        assert "T" in x and dt.tzinfo is not None, x
        return dt.timestamp()
    assert isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x), x
    return float(x)


def _one(hazard: object, value: object, unit: object) -> float:
    assert isinstance(hazard, str) and hazard in FACTOR, hazard
    assert isinstance(unit, str) and unit in FACTOR[hazard], (hazard, unit)
    assert isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) * FACTOR[hazard][unit]


def check_data(obj: dict[str, object]) -> tuple[str, list[tuple[str, float, float]]]:
    """Independent check of SPEC §2.1: returns (shape, [(hazard, t, canonical value)])."""
    assert set(obj) <= TAGS | {"t", "hazard", "value", "unit", "readings", "values", "t0", "dt"}
    if "seq" in obj:
        assert isinstance(obj["seq"], int) and obj["seq"] >= 0
    if "worker" in obj:
        assert isinstance(obj["worker"], str) and re.fullmatch(r"w-\d+", obj["worker"])
    keys = set(obj) - TAGS
    if keys == {"t", "hazard", "value", "unit"}:
        return "single", [(str(obj["hazard"]), _time(obj["t"]), _one(obj["hazard"], obj["value"], obj["unit"]))]
    if keys == {"t", "readings"}:
        rs = obj["readings"]
        assert isinstance(rs, list) and rs and all(set(r) == {"hazard", "value", "unit"} for r in rs)
        assert len({r["hazard"] for r in rs}) == len(rs)
        t = _time(obj["t"])
        return "multi-" + type(obj["t"]).__name__, [
            (r["hazard"], t, _one(r["hazard"], r["value"], r["unit"])) for r in rs
        ]
    values = obj["values"]
    assert isinstance(values, list) and values
    if keys == {"hazard", "unit", "t0", "dt", "values"}:
        dt = obj["dt"]
        assert isinstance(dt, float | int) and dt > 0
        times = [_time(obj["t0"]) + i * dt for i in range(len(values))]
        shape = "series-t0"
    else:
        assert keys == {"hazard", "unit", "t", "values"}, keys
        assert isinstance(obj["t"], list) and len(obj["t"]) == len(values)
        times = [_time(t) for t in obj["t"]]
        assert times == sorted(times)
        shape = "series-t"
    hazard = str(obj["hazard"])
    return shape, [(hazard, t, _one(hazard, v, obj["unit"])) for t, v in zip(times, values, strict=True)]


def check_status(obj: dict[str, object]) -> None:
    assert obj["state"] in ("online", "offline")
    if obj["state"] == "online":
        assert isinstance(obj["hazards"], list) and set(obj["hazards"]) <= set(FACTOR)
        assert isinstance(obj["interval_s"], float | int) and obj["interval_s"] > 0
        date.fromisoformat(str(obj["calibrated_on"]))


def collect(messages: list[SimMessage], start: float, end: float) -> Run:
    acc: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    shapes: set[str] = set()
    for m in messages:
        match = TOPIC.fullmatch(m.topic)
        assert match, m.topic
        assert len(m.payload) <= 256 * 1024 and m.qos == 1
        obj = orjson.loads(m.payload)
        assert isinstance(obj, dict)
        if match[4] == "status":
            assert m.retain
            check_status(obj)
            continue
        assert not m.retain
        shape, readings = check_data(obj)
        shapes.add(shape)
        for hazard, t, v in readings:
            assert start <= t <= m.t_s < end  # never ahead of the moment it is published
            acc[("/".join(match.groups()[:3]), hazard)].append((t, v))
    series = {k: (np.array([t for t, _ in tv]), np.array([v for _, v in tv])) for k, tv in acc.items()}
    return Run(start, end, messages, series, shapes)


def run(name: str, hours: float, interval: float, seed: int = 7, **kw: object) -> Run:
    spec = kw.pop("spec", MineSpec(sites=2))
    assert isinstance(spec, MineSpec)
    msgs = list(simulate(spec, scenario(name), MONDAY_05H, hours * 3600, interval, seed, **kw))  # type: ignore[arg-type]
    return collect(msgs, MONDAY_05H, MONDAY_05H + hours * 3600)


@pytest.fixture(scope="module", params=[5.0, 60.0], ids=["live-5s", "backfill-60s"])
def demo(request: pytest.FixtureRequest) -> Run:
    return run("demo", 3.0, request.param)


def channels(r: Run, zone: str, hazard: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    found = [tv for (dev, h), tv in r.series.items() if h == hazard and dev.startswith(f"kop-1/{zone}/")]
    assert found, (zone, hazard)
    yield from found


def mean_15min(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Trailing 15-min time-weighted mean (each value holds until the next) on a 1-s grid."""
    grid = np.arange(t[0], t[-1], 1.0)
    held = v[np.searchsorted(t, grid, side="right") - 1]
    c = np.concatenate([[0.0], np.cumsum(held)])
    return np.asarray((c[900:] - c[:-900]) / 900.0, np.float64)


# -- shapes, order, determinism --------------------------------------------------------------
def test_every_payload_has_a_spec_shape_and_all_shapes_occur(demo: Run) -> None:
    assert demo.shapes == {"single", "multi-float", "multi-str", "series-t0", "series-t"}


def test_the_gateway_codec_accepts_every_payload(demo: Run) -> None:
    from gateway.codec import TopicKind, parse_topic
    from gateway.payloads import decode_readings, decode_status

    for m in demo.messages:
        topic = parse_topic(m.topic, "osh")
        if topic.kind is TopicKind.STATUS:
            decode_status(m.payload)
        else:
            assert decode_readings(topic, m.payload, now_s=m.t_s).count >= 1


def test_messages_come_in_event_time_order_with_status_first(demo: Run) -> None:
    times = [m.t_s for m in demo.messages]
    assert times == sorted(times)
    devices = {k[0] for k in demo.series}
    first = demo.messages[: len(devices)]
    assert all(m.topic.endswith("/status") and m.retain and m.t_s == demo.start for m in first)
    assert {m.topic.removesuffix("/status").removeprefix("osh/") for m in first} == devices


def test_same_seed_same_messages_other_seed_other_values() -> None:
    args = (MineSpec(), scenario("demo"), MONDAY_05H, 1800.0, 5.0)
    a, b, c = (list(simulate(*args, seed=s)) for s in (1, 1, 2))
    assert a == b
    assert [m.topic for m in a] == [m.topic for m in c]
    assert sum(x.payload != y.payload for x, y in zip(a, c, strict=True)) > len(a) // 2


def test_chunk_size_does_not_move_or_drop_messages() -> None:
    kw = {"spec": MineSpec(), "interval_s": 7.0}
    a = simulate(kw["spec"], scenario("demo"), MONDAY_05H, 4 * 3600, 7.0, 3)  # type: ignore[arg-type]
    b = simulate(kw["spec"], scenario("demo"), MONDAY_05H, 4 * 3600, 7.0, 3, chunk_s=997.0)  # type: ignore[arg-type]
    assert sorted((m.topic, m.t_s) for m in a) == sorted((m.topic, m.t_s) for m in b)


def test_seq_counts_each_devices_messages(demo: Run) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in demo.messages:
        if m.topic.endswith("/data"):
            seqs[m.topic].append(orjson.loads(m.payload)["seq"])
    silent = scenario("demo").resolve(MineSpec(sites=2).devices()).incidents[2].where()
    for topic, s in seqs.items():
        assert s[0] == 0
        gaps = np.diff(s)
        assert np.all(gaps >= 1)
        assert np.all(gaps == 1) == (silent not in topic), topic


def test_layout_has_unique_realistic_names() -> None:
    devices = MineSpec(sites=3, devices_per_hazard=2, workers_per_site=4).devices()
    ids = [d.device for d in devices]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"(gd|ed|pd|dd|nd|pm|pn)-\d+", i) for i in ids)
    assert {d.site for d in devices} == {"kop-1", "kop-2", "kop-3"}
    personal = [d for d in devices if d.kind.value in ("pm", "pn")]
    assert len(personal) == 3 * 4 * 2 and all(d.worker and d.zone.startswith("face") for d in personal[:4])
    with pytest.raises(ValueError, match="topic level"):
        MineSpec(zones=("face 1",))


# -- baselines -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quiet_day() -> Run:
    return run("quiet", 24.0, 60.0, spec=MineSpec())


@pytest.mark.parametrize(
    ("hazard", "p5", "p95"),
    [("ch4", 0.08, 0.42), ("o2", 20.7, 21.1), ("co2", 500, 1500), ("noise", 68, 100), ("h2s", 0, 0.3)],
)
def test_baseline_levels_are_realistic(quiet_day: Run, hazard: str, p5: float, p95: float) -> None:
    v = np.concatenate([tv[1] for (_, h), tv in quiet_day.series.items() if h == hazard])
    lo, hi = np.percentile(v, [5, 95])
    assert p5 <= lo and hi <= p95, (lo, hi)


def test_diesel_gases_rise_at_shift_change_and_dust_while_cutting(quiet_day: Run) -> None:
    for t, v in channels(quiet_day, "north-adit", "co"):
        hour = (t % 86400) / 3600
        change = np.isin(np.round(hour), [6, 14, 22]) & (np.abs(hour - np.round(hour)) < 0.25)
        mid = np.abs(hour - 10) < 0.25
        assert v[change].mean() > 3 * v[mid].mean()
    for t, v in channels(quiet_day, "face-1", "respirable_dust"):
        in_shift = ((t % 86400) / 3600 - 6) % 8
        assert v[(in_shift > 1.5) & (in_shift < 3)].mean() > 3 * v[in_shift < 0.8].mean()


# -- incidents -------------------------------------------------------------------------------
def _at(name: str, i: int) -> float:
    return MONDAY_05H + scenario(name).incidents[i].at_s


def test_methane_crosses_1_0_then_1_5_and_clears(demo: Run) -> None:
    at = _at("demo", 1)
    for t, v in channels(demo, "face-1", "ch4"):
        assert v[t < at].max() < 1.0 and v[t > at + 3600].max() < 1.0
        first = v[(t > at + 9 * 60) & (t < at + 19 * 60)]
        assert first.min() >= 1.0 and first.max() < 1.5
        assert v.max() >= 1.5


def test_blasting_fumes_exceed_the_co_stel_and_decay(demo: Run) -> None:
    at = _at("demo", 3)
    for t, v in channels(demo, "face-2", "co"):
        assert mean_15min(t, v).max() >= 100.0
        assert v[(t > at + 30 * 60) & (t < at + 45 * 60)].max() < 0.1 * v.max()
    for _, v in channels(demo, "face-2", "no2"):
        assert v.max() > 5.0


def test_oxygen_dips_below_19_5_and_recovers(demo: Run) -> None:
    at = _at("demo", 4)
    for t, v in channels(demo, "return-1", "o2"):
        assert v.min() < 19.5 and v[t < at].min() > 20.5 and v[t > at + 1800].min() > 20.5


def test_silent_sensor_stops_publishing_and_goes_offline(demo: Run) -> None:
    inc = scenario("demo").resolve(MineSpec(sites=2).devices()).incidents[2]
    at, back = MONDAY_05H + inc.at_s, MONDAY_05H + inc.at_s + 1800
    data = [m.t_s for m in demo.messages if m.topic == f"osh/{inc.where()}/data"]
    assert data and not [t for t in data if at <= t < back]
    assert max(t for t in data if t < at) > at - 61 and min(t for t in data if t >= back) < back + 61
    status = [
        (m.t_s, orjson.loads(m.payload)["state"]) for m in demo.messages if m.topic.endswith(f"{inc.where()}/status")
    ]
    assert status == [(demo.start, "online"), (at + 45, "offline"), (back, "online")]


def test_noisy_shift_holds_92_to_95_dba_for_the_shift() -> None:
    r = run("noisy-shift", 9.0, 60.0, spec=MineSpec())
    for t, v in channels(r, "face-1", "noise"):
        shift = v[t < MONDAY_05H + 8 * 3600]
        assert 92.0 <= shift.min() and shift.max() <= 95.0
        assert v[t >= MONDAY_05H + 8 * 3600].max() < 92.0


def test_incident_targets_can_be_named_and_are_checked() -> None:
    devices = MineSpec().devices()
    sc = Scenario("x", (MethaneRise(60.0, zone="return-1"), BlastingFumes(7200.0)))
    assert sc.resolve(devices).timeline() == [
        "+00:01  methane rise  kop-1/return-1",
        "+02:00  blasting fumes  kop-1/face-2",
    ]
    with pytest.raises(ValueError, match="no device measuring ch4"):
        MethaneRise(0.0, zone="workshop-9").resolve(devices)
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario("earthquake")
    assert {"quiet", "demo", "month"} <= set(SCENARIO_NAMES)


# -- backfill --------------------------------------------------------------------------------
def test_backfill_batches_series_and_keeps_message_counts() -> None:
    r = run("quiet", 48.0, 60.0, spec=MineSpec(), series_batch_s=600.0)
    per_topic: dict[str, list[int]] = defaultdict(list)
    for m in r.messages:
        obj = orjson.loads(m.payload)
        if "values" in obj:
            per_topic[m.topic].append(len(obj["values"]))
    nd = per_topic["osh/kop-1/face-1/nd-2/data"]
    assert set(nd) == {60} and len(nd) == 48 * 6 - 1  # 10-s LAeq, 10-min batches, last one incomplete
    assert set(per_topic["osh/kop-1/face-1/dd-1/data"]) == {10}


def test_gas_series_carry_the_same_readings_in_fewer_messages() -> None:
    """`gas_series_s`: gas loggers send one series per hazard (issue 9: a cheaper backfill)."""
    point = run("silent-sensor", 2.0, 60.0, spec=MineSpec(), series_batch_s=600.0)
    series = run("silent-sensor", 2.0, 60.0, spec=MineSpec(), series_batch_s=600.0, gas_series_s=600.0)
    assert len(series.messages) < len(point.messages) / 2
    gd = [orjson.loads(m.payload) for m in series.messages if m.topic == "osh/kop-1/face-1/gd-2/data"]
    assert {o["hazard"] for o in gd} == {"ch4", "o2", "co", "h2s"} and all(o["dt"] == 60.0 for o in gd)
    assert {len(o["values"]) for o in gd[4:-4]} == {10}
    assert series.series.keys() == point.series.keys()
    for key, (t, _v) in point.series.items():  # the same reading times; the silent spell stays silent
        np.testing.assert_array_equal(series.series[key][0], t)
    with pytest.raises(ValueError, match="gas_series_s"):
        list(simulate(MineSpec(), scenario("quiet"), MONDAY_05H, 3600.0, 60.0, gas_series_s=-1.0))


# -- pacing ----------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class AsyncFakeClock(FakeClock):
    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        FakeClock.sleep(self, seconds)


def _msgs(times: list[float]) -> list[SimMessage]:
    return [SimMessage("osh/a/b/c/data", b"{}", t) for t in times]


def test_paced_yields_each_message_when_due() -> None:
    clock = FakeClock()
    out = [(m.t_s, clock.now) for m in paced(_msgs([1000.0, 1000.0, 1060.0, 1600.0]), 60.0, clock)]
    assert [w - 100.0 for _, w in out] == pytest.approx([0.0, 0.0, 1.0, 10.0])
    assert list(paced(_msgs([1.0, 2.0]), math.inf, clock)) and clock.now == pytest.approx(110.0)
    with pytest.raises(ValueError, match="speed"):
        list(paced(_msgs([1.0]), 0.0, clock))


async def test_apaced_awaits_the_same_schedule() -> None:
    clock = AsyncFakeClock()
    out = [clock.now async for _ in apaced(_msgs([0.0, 30.0, 90.0]), 30.0, clock)]
    assert out == pytest.approx([100.0, 101.0, 103.0])


def test_live_start_keeps_event_time_behind_the_wall_clock() -> None:
    now, duration, speed = 2_000_000_000.0, 3 * 3600.0, 60.0
    start = live_start(now, duration, speed)
    clock = FakeClock()
    clock.now = now
    for m in paced(simulate(MineSpec(), scenario("quiet"), start, duration, 60.0), speed, clock):
        assert m.t_s <= clock.now + 1e-6
    assert clock.now == pytest.approx(now + duration / speed, abs=60 / speed)


def test_readings_of_a_channel_are_exactly_interval_s_apart() -> None:
    r = run("quiet", 2.0, 60.0, spec=MineSpec())
    for (_, hazard), (t, _) in r.series.items():
        step = 10.0 if hazard == "noise" else 60.0
        assert set(np.diff(t).tolist()) == {step}, hazard  # exact: max_gap = 60 s is not a gap


def test_an_odd_start_time_loses_no_first_reading() -> None:
    start = MONDAY_05H + 0.0004  # rounds down to the millisecond: must not drop the k=0 tick
    msgs = list(simulate(MineSpec(), scenario("quiet"), start, 60.0, 5.0))
    first = next(m for m in msgs if m.topic == "osh/kop-1/north-adit/gd-1/data")
    assert orjson.loads(first.payload)["seq"] == 0 and first.t_s >= start


def test_devices_are_recalibrated_before_31_days_pass() -> None:
    days = 60
    msgs = simulate(MineSpec(), scenario("quiet"), MONDAY_05H, days * 86400.0, 3600.0, seed=5)
    calibrated: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for m in msgs:
        if m.topic.endswith("/status"):
            on = datetime.fromisoformat(orjson.loads(m.payload)["calibrated_on"] + "T00:00:00+00:00")
            calibrated[m.topic].append((m.t_s, on.timestamp()))
    assert len(calibrated) == len(MineSpec().devices())
    end = MONDAY_05H + days * 86400.0
    for topic, seen in calibrated.items():
        ages = [(t - on) / 86400 for t, on in seen] + [(end - seen[-1][1]) / 86400]
        assert max(ages) <= 29.0, topic  # recalibrated every 28 days: never past a 31-day interval
        assert len(seen) >= 3, topic  # start + at least two calibrations in 60 days
