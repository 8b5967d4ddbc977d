"""ExposureEngine behaviour on scripted streams: the conformance scenarios of the contract
check, shift closure, gaps, and the row contract of ConditionBatch."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from rules.engine import ExposureEngine
from rules.profiles import ProfileBook, SiteConfig
from rules.results import EngineResult
from rules.types import RULE_BY_CODE, SEVERITY_BY_CODE, ChannelKey, Hazard, ReadingBatch, RuleKind, Severity

T0 = datetime(2026, 11, 22, 6, tzinfo=UTC).timestamp()  # a shift start (UTC default)


@pytest.fixture(scope="module")
def book() -> ProfileBook:
    return ProfileBook.load()


def batch(ch: int, t: np.ndarray | list[float], v: np.ndarray | list[float]) -> ReadingBatch:
    t_arr = np.asarray(t, dtype=np.float64)
    return ReadingBatch(np.full(t_arr.shape[0], ch, np.int64), t_arr, np.asarray(v, dtype=np.float64))


def rows(res: EngineResult, rule: RuleKind) -> list[tuple[int, Severity | None, float, float]]:
    c = res.conditions
    out = []
    for i in range(len(c)):
        if RULE_BY_CODE[c.rule[i]] is rule:
            sev = SEVERITY_BY_CODE[c.severity[i]] if c.severity[i] >= 0 else None
            out.append((int(c.channel[i]), sev, float(c.value[i]), float(c.threshold[i])))
    return out


def test_co_stel_alarm_from_single_readings(book: ProfileBook) -> None:
    """Contract check: CO 150 ppm every 10 s for 20 min from a shift start → STEL alarm (EU 100 ppm)."""
    eng = ExposureEngine(book, "eu")
    co = eng.registry.id_for(ChannelKey("kop-1", "north", "gd-1", Hazard.CO))
    worst = None
    for i in range(120):
        for ch, sev, value, thr in rows(eng.ingest(batch(co, [T0 + 10.0 * i], [150.0])), RuleKind.STEL):
            assert ch == co and thr == 100.0
            if sev is not None:
                worst = (sev, value)
    assert worst is not None and worst[0] is Severity.ALARM and worst[1] == pytest.approx(150.0)


def test_noise_series_lex8h_alarm(book: ProfileBook) -> None:
    """Contract check: 8 h of 90 dBA in 10-s steps, 360 values a message → LEX,8h ≥ 87 alarm."""
    eng = ExposureEngine(book, "eu")
    nd = eng.registry.id_for(ChannelKey("kop-1", "face", "nd-3", Hazard.NOISE))
    seen = []
    for k in range(8):
        res = eng.ingest(batch(nd, T0 + k * 3600 + 10.0 * np.arange(360), np.full(360, 90.0)))
        seen += rows(res, RuleKind.LEX8H)
    assert seen[-1][1] is Severity.ALARM and seen[-1][3] == 87.0
    assert seen[0][1] is Severity.WARNING  # 1 h at 90 dBA: LEX,8h 81 dB(A) ≥ 80
    rec = eng.running(nd)
    assert rec is not None and rec.lex8h == pytest.approx(90.0 + 10 * np.log10(28790 / 28800))


def test_msha_methane_and_oxygen_levels(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "us-msha")
    ch4 = eng.registry.id_for(ChannelKey("kop-2", "return", "ch-1", Hazard.CH4))
    o2 = eng.registry.id_for(ChannelKey("kop-2", "return", "ox-2", Hazard.O2))
    res = eng.ingest(ReadingBatch(np.array([ch4, o2]), np.array([T0, T0]), np.array([1.2, 18.9])))
    got = {ch: sev for ch, sev, _, _ in rows(res, RuleKind.LEVEL)}
    assert got[ch4] is Severity.ALARM and got[o2] in (Severity.ALARM, Severity.CRITICAL)
    res = eng.ingest(batch(ch4, [T0 + 10], [1.6]))
    assert rows(res, RuleKind.LEVEL) == [(ch4, Severity.CRITICAL, 1.6, 1.5)]
    res = eng.ingest(batch(ch4, [T0 + 20, T0 + 30], [0.9, 0.5]))
    assert rows(res, RuleKind.LEVEL) == [(ch4, None, 0.5, 1.0)]  # latest, lowest tier's threshold


def test_one_row_per_channel_rule_keeps_worst_then_latest(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "us-msha")
    ch4 = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CH4))
    res = eng.ingest(batch(ch4, [T0, T0 + 1, T0 + 2, T0 + 3], [1.6, 0.2, 1.7, 1.1]))
    c = res.conditions
    assert len(c) == 1 and c.t_s[0] == T0 + 2 and c.value[0] == 1.7
    assert eng.book.limits[int(c.limit[0])].severity is Severity.CRITICAL


def test_twa_record_on_shift_close_by_reading(book: ProfileBook) -> None:
    """OSHA 1910.1000(d)(1)(ii): 2 h at 150, 2 h at 75, 4 h at 50 ppm → 81.25 ppm (10-s readings)."""
    eng = ExposureEngine(book, "eu")
    co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
    t = T0 + 10.0 * np.arange(2880)
    v = np.where(t < T0 + 7200, 150.0, np.where(t < T0 + 14400, 75.0, 50.0))
    res = eng.ingest(batch(co, t, v))
    assert res.exposures == []
    res = eng.ingest(batch(co, [T0 + 8 * 3600 + 5], [0.0]))
    (rec,) = res.exposures
    assert rec.final and rec.shift == "2026-11-22/1"
    assert rec.twa8 == pytest.approx(81.25, rel=1e-12)
    assert rec.coverage == pytest.approx(1.0) and rec.max_gap_s == 0.0
    assert rec.peak == 150.0 and rec.stel15_max == pytest.approx(150.0)
    assert rec.limits == {"limit_twa8": 20.0, "limit_stel15": 100.0}


def test_gap_is_not_exposure_and_tick_closes(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "eu", max_gap_s=60.0, grace_s=300.0)
    co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
    eng.ingest(batch(co, [T0, T0 + 30, T0 + 3630], [100.0, 100.0, 100.0]))
    end = T0 + 8 * 3600
    assert eng.tick(end + 299).exposures == []
    (rec,) = eng.tick(end + 300).exposures
    # held: 30 s + 60 s (gap after the 2nd reading) + 60 s after the last = 150 s at 100 ppm
    assert rec.twa8 == pytest.approx(100.0 * 150 / 28800)
    assert rec.coverage == pytest.approx(150 / 28800)
    assert rec.max_gap_s == pytest.approx(end - (T0 + 3690))
    assert eng.tick(end + 400).exposures == []  # closed once


def test_late_data_reopens_closed_shift(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "eu")
    co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
    now = T0 + 86400
    eng.ingest(batch(co, [T0, T0 + 10], [10.0, 10.0]))
    (first,) = eng.tick(now).exposures
    eng.ingest(batch(co, [T0 + 20, T0 + 30], [10.0, 10.0]))
    (second,) = eng.tick(now + 1).exposures
    assert second.twa8 > first.twa8 and second.shift == first.shift
    assert eng.tick(now + 2).exposures == []


def test_site_shift_in_other_zone(book: ProfileBook) -> None:
    sites = {"bor": SiteConfig("bor", tz="Europe/Belgrade", profile="us-msha")}
    eng = ExposureEngine(book, "eu", sites)
    ch4 = eng.registry.id_for(ChannelKey("bor", "z", "d", Hazard.CH4))
    local_6 = datetime(2026, 11, 22, 5, tzinfo=UTC).timestamp()  # 06:00 CET
    res = eng.ingest(batch(ch4, [local_6 - 10, local_6 + 10], [1.2, 0.3]))
    (rec,) = res.exposures
    assert rec.shift == "2026-11-21/3" and rec.profile == "us-msha"


MIXED = {
    "irritants": {
        "extends": "eu",
        "mixture": [{"name": "CO + SO2", "hazards": ["co", "so2"], "basis": "twa", "severity": "alarm",
                     "label": "CO + SO2 8-h mixture", "source": "29 CFR 1910.1000(d)(2)(i)",
                     "action": "Reduce exposure to both gases."}],
    }
}  # fmt: skip


def test_mixture_index_sums_fractions_of_limits() -> None:
    """OSHA 1910.1000(d)(2)(i): Em = C1/L1 + C2/L2; CO at 60 % and SO2 at 50 % of their TWA → 1.1."""
    book = ProfileBook.load(overrides=MIXED)
    eng = ExposureEngine(book, "irritants")
    co = eng.registry.id_for(ChannelKey("s", "z", "md", Hazard.CO))
    so2 = eng.registry.id_for(ChannelKey("s", "z", "md", Hazard.SO2))
    t = T0 + 10.0 * np.arange(2880)
    eng.ingest(batch(co, t, np.full(t.size, 12.0)))  # 0.6 × 20 ppm
    res = eng.ingest(batch(so2, t, np.full(t.size, 0.25)))  # 0.5 × 0.5 ppm
    (row,) = rows(res, RuleKind.MIXTURE)
    assert row[0] == co and row[1] is Severity.ALARM
    assert row[2] == pytest.approx(0.6 * 28790 / 28800 + 0.5 * 28790 / 28800, rel=1e-9)
    other = eng.registry.id_for(ChannelKey("s", "z", "other", Hazard.CO))  # one gas only: no index
    assert rows(eng.ingest(batch(other, [T0], [5.0])), RuleKind.MIXTURE) == []


def test_projected_twa_warns_before_the_limit(book: ProfileBook) -> None:
    """Silica at 0.08 mg/m3 for the first hour: TWA 0.01 (< PEL 0.05), projected 0.08 → warning."""
    eng = ExposureEngine(book, "us-msha")
    si = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.SILICA))
    res = eng.ingest(batch(si, T0 + 10.0 * np.arange(361), np.full(361, 0.08)))
    ((_, sev, value, thr),) = rows(res, RuleKind.TWA_PROJECTED)
    assert sev is Severity.WARNING and thr == 0.05
    assert value == pytest.approx(0.08 * (3600 + 8 * 3600 - 3600) / 28800)
    assert rows(res, RuleKind.TWA)[0][1] is None


def test_readings_too_late_are_levels_only(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "us-msha", reorder_s=60.0, reorder_readings=8)
    ch4 = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CH4))
    eng.ingest(batch(ch4, T0 + np.arange(100.0), np.full(100, 0.5)))
    res = eng.ingest(batch(ch4, [T0 + 10.5], [1.7]))  # far behind the checkpoint
    assert rows(res, RuleKind.LEVEL) == [(ch4, Severity.CRITICAL, 1.7, 1.5)]
    assert eng.stats["late_dropped"] == 1 and eng.live["late"][ch4] == 1
    rec = eng.running(ch4)
    assert rec is not None and rec.peak == 0.5  # exposure state untouched


def test_late_reading_within_horizon_is_replayed(book: ProfileBook) -> None:
    """Same records whether a reading arrives in order or late (within the horizon)."""

    def run(order: list[int]) -> tuple[float, float | None]:
        eng = ExposureEngine(book, "eu")
        co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
        t, v = T0 + 10.0 * np.arange(200), np.linspace(0, 300, 200)
        for part in np.array_split(np.array(order), 7):
            eng.ingest(batch(co, t[part], v[part]))
        assert eng.stats["late_dropped"] == 0
        (rec,) = eng.tick(T0 + 86400).exposures
        return rec.twa8, rec.stel15_max

    in_order = list(range(200))
    shuffled = in_order[:]
    shuffled[150], shuffled[170] = shuffled[170], shuffled[150]
    assert run(shuffled) == pytest.approx(run(in_order), rel=1e-12)


def test_duplicate_time_stamps_later_one_holds(book: ProfileBook) -> None:
    eng = ExposureEngine(book, "eu")
    co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
    eng.ingest(batch(co, [T0, T0, T0 + 30], [500.0, 10.0, 0.0]))
    rec = eng.running(co)
    assert rec is not None and rec.twa8 == pytest.approx(10.0 * 30 / 28800) and rec.peak == 500.0


def test_snapshot_restore_continues_exactly(book: ProfileBook) -> None:
    """A restart from a snapshot mid-shift gives the same records as an engine never stopped."""
    t, v = T0 + 10.0 * np.arange(600), np.linspace(0, 200, 600)

    def feed(eng: ExposureEngine, sl: slice) -> None:
        co = eng.registry.id_for(ChannelKey("s", "z", "d", Hazard.CO))
        eng.ingest(batch(co, t[sl], v[sl]))

    straight = ExposureEngine(book, "eu")
    feed(straight, slice(0, 600))
    first = ExposureEngine(book, "eu")
    feed(first, slice(0, 300))
    again = ExposureEngine.restore(first.snapshot(), book, "eu")
    feed(again, slice(300, 600))
    (a,) = straight.tick(T0 + 86400).exposures
    (b,) = again.tick(T0 + 86400).exposures
    assert (b.twa8, b.stel15_max, b.peak, b.coverage) == pytest.approx((a.twa8, a.stel15_max, a.peak, a.coverage))


def test_restore_rejects_garbage(book: ProfileBook) -> None:
    from rules.errors import ConfigError

    with pytest.raises(ConfigError, match="unreadable"):
        ExposureEngine.restore(b"not a snapshot", book, "eu")
