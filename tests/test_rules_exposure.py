"""Exposure formulas against published tables and worked examples (tolerances as stated by the
source, or half a unit of the last printed digit for rounded tables). Sources in each test."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from rules import exposure as ex
from rules.engine import ExposureEngine
from rules.profiles import ProfileBook
from rules.types import ChannelKey, Hazard, ReadingBatch

T0 = datetime(2026, 11, 22, 6, tzinfo=UTC).timestamp()

#: OSHA 29 CFR 1910.95 App. A, Table G-16a (L dBA → T hours); 83 dB per the older owadisp page.
G16A = (
    "80:32 81:27.9 82:24.3 83:21.1 84:18.4 85:16 86:13.9 87:12.1 88:10.6 89:9.2 90:8 91:7.0 92:6.1 93:5.3 "
    "94:4.6 95:4 96:3.5 97:3.0 98:2.6 99:2.3 100:2 101:1.7 102:1.5 103:1.3 104:1.1 105:1 106:0.87 107:0.76 "
    "108:0.66 109:0.57 110:0.5 111:0.44 112:0.38 113:0.33 114:0.29 115:0.25 116:0.22 117:0.19 118:0.16 "
    "119:0.14 120:0.125 121:0.11 122:0.095 123:0.082 124:0.072 125:0.063 126:0.054 127:0.047 128:0.041 "
    "129:0.036 130:0.031"
)
#: MSHA 30 CFR 62 Appendix, Table 62-1 (as printed: 80, then 85..115).
T62_1 = (
    "80:32.0 85:16.0 86:13.9 87:12.1 88:10.6 89:9.2 90:8.0 91:7.0 92:6.1 93:5.3 94:4.6 95:4.0 96:3.5 97:3.0 "
    "98:2.6 99:2.3 100:2.0 101:1.7 102:1.5 103:1.3 104:1.1 105:1.0 106:0.87 107:0.76 108:0.66 109:0.57 "
    "110:0.50 111:0.44 112:0.38 113:0.33 114:0.29 115:0.25"
)
#: MSHA Table 62-2 (dose % → TWA8 dBA).
T62_2 = (
    "25:80 29:81 33:82 38:83 44:84 50:85 57:86 66:87 76:88 87:89 100:90 115:91 132:92 152:93 174:94 200:95 "
    "230:96 264:97 303:98 350:99 400:100 460:101 530:102 610:103 700:104 800:105 920:106 1056:107 1213:108 "
    "1393:109 1600:110 1838:111 2111:112 2425:113 2786:114 3200:115"
)


def table(text: str) -> list[tuple[float, str]]:
    return [(float(a), b) for a, b in (pair.split(":") for pair in text.split())]


def half_unit(printed: str) -> float:
    """Rounding tolerance of a printed number: half a unit of its last digit."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0**-decimals


@pytest.mark.parametrize(("level", "printed"), table(G16A) + table(T62_1))
def test_reference_duration_tables_g16a_and_62_1(level: float, printed: str) -> None:
    """T = 8/2^((L − 90)/5) h reproduces OSHA Table G-16a and MSHA Table 62-1 to their rounding."""
    assert abs(ex.allowed_hours(level) - float(printed)) <= half_unit(printed) + 1e-12


@pytest.mark.parametrize(("dose", "twa"), table(T62_2))
def test_msha_table_62_2_dose_of_each_twa(dose: float, twa: str) -> None:
    """MSHA Table 62-2: D = 100·2^((TWA8 − 90)/5); the table prints doses rounded to two or three
    significant figures (350 for 348.2 at 99 dBA; 44 for 43.5 at 84 dBA): within 1 % or 0.5 %."""
    assert 100 * 2 ** ((float(twa) - 90) / 5) == pytest.approx(dose, rel=0.01, abs=0.5)


@pytest.mark.parametrize(
    ("dose", "twa"), [(25, 80), (50, 85), (100, 90), (200, 95), (800, 105), (1056, 107), (3200, 115)]
)
def test_msha_table_62_2_twa_from_dose(dose: float, twa: float) -> None:
    """TWA8 = 16.61·log10(D/100) + 90 gives these Table 62-2 rows within 0.05 dB (limits.md §4.9)."""
    assert ex.twa_from_dose(dose) == pytest.approx(twa, abs=0.05)
    assert 16.61 * np.log10(dose / 100) + 90 == pytest.approx(ex.twa_from_dose(dose), abs=0.005)


@pytest.mark.parametrize(("level", "minutes"), [(85, 480), (88, 240), (91, 120), (94, 60), (97, 30), (100, 15)])
def test_niosh_allowed_times(level: float, minutes: float) -> None:
    """NIOSH 98-126 (CDC noise page): 85 dBA 8 h … 100 dBA 15 min, 3-dB exchange."""
    assert ex.allowed_hours(level, 85.0, 3.0) * 60 == pytest.approx(minutes, rel=1e-12)


@pytest.mark.parametrize("dose", [25.0, 50.0, 100.0, 200.0, 400.0, 800.0])
def test_niosh_twa_from_dose(dose: float) -> None:
    """NIOSH 98-126 prints TWA = 10·log10(D/100) + 85; the exact inverse of T(L) with a 3-dB
    exchange is 3·log2(D/100) + 85: they agree within 0.05 dB up to 800 %."""
    assert ex.twa_from_dose(dose, 85.0, 3.0) == pytest.approx(10 * np.log10(dose / 100) + 85, abs=0.05)


@pytest.mark.parametrize(("pa", "db"), [(112.0, 135.0), (140.0, 136.9), (200.0, 140.0)])
def test_peak_conversions(pa: float, db: float) -> None:
    """Directive 2003/10/EC Art. 3: 112 Pa = 135 dB(C), 140 Pa ≈ 137 (136.9), 200 Pa = 140 (±0.05 dB)."""
    assert ex.peak_db(pa) == pytest.approx(db, abs=0.05)


def test_osha_twa_example_formula() -> None:
    """29 CFR 1910.1000(d)(1)(ii): (2·150 + 2·75 + 4·50)/8 = 81.25 ppm."""
    assert ex.twa8((2 * 150 + 2 * 75 + 4 * 50) * 3600.0) == pytest.approx(81.25, rel=1e-15)


def engine_record(profile: str, hazard: Hazard, steps: list[tuple[float, float]], dt: float = 10.0):  # type: ignore[no-untyped-def]
    """Feed (hours, level) steps from a shift start in `dt` s readings; close the shift; its record."""
    eng = ExposureEngine(ProfileBook.load(), profile)
    ch = eng.registry.id_for(ChannelKey("s", "z", "d", hazard))
    t, v, start = [], [], T0
    for hours, level in steps:
        n = round(hours * 3600 / dt)
        t.append(start + dt * np.arange(n))
        v.append(np.full(n, level))
        start += hours * 3600
    t.append(np.array([start]))  # a closing 0 reading: the last level holds until here, not max_gap on
    v.append(np.array([0.0]))
    res = eng.ingest(ReadingBatch(np.full(sum(map(len, t)), ch), np.concatenate(t), np.concatenate(v)))
    (rec,) = [r for r in res.exposures + eng.tick(T0 + 86400).exposures if r.shift == "2026-11-22/1"]
    return rec


def test_multi_level_dose_example() -> None:
    """90 dBA 4 h, 95 dBA 2 h, 85 dBA 2 h: D = 100·(4/8 + 2/4 + 2/16) = 112.5 %, TWA 90.85 dBA
    (1910.95 App. A formula; Soundtrace example): ±0.5 % dose, ±0.1 dB."""
    rec = engine_record("us-msha", Hazard.NOISE, [(4, 90.0), (2, 95.0), (2, 85.0)])
    assert rec.dose_pct == pytest.approx(112.5, abs=0.5)
    assert ex.twa_from_dose(rec.dose_pct) == pytest.approx(90.85, abs=0.1)


def test_constant_92_dba_dose_formula_not_table() -> None:
    """8 h at 92 dBA: formula T = 6.063 h → D = 131.95 % (the table's 6.1 h gives 131 %)."""
    rec = engine_record("us-msha", Hazard.NOISE, [(8, 92.0)])
    assert rec.dose_pct == pytest.approx(131.95, abs=0.5)
    assert rec.dose_pct == pytest.approx(100 * 8 / ex.allowed_hours(92.0), rel=1e-9)


def test_msha_dose_threshold_80_dba() -> None:
    """62.101: levels below 80 dBA do not add dose; 8 h at 79 dBA → 0 %, at 80 dBA → 25 %."""
    assert engine_record("us-msha", Hazard.NOISE, [(8, 79.0)]).dose_pct == 0.0
    assert engine_record("us-msha", Hazard.NOISE, [(8, 80.0)]).dose_pct == pytest.approx(25.0, rel=1e-9)


@pytest.mark.parametrize(
    ("level", "minutes"),
    [(83, 240), (86, 120), (89, 60), (92, 30), (95, 15), (98, 8), (101, 4), (104, 2), (107, 1)],
)
def test_scenihr_equal_energy_lex_80(level: float, minutes: float) -> None:
    """SCENIHR 2008 Table 3: each exposure alone gives LEX,8h = 80 dB(A) (within 0.25 dB)."""
    rec = engine_record("eu", Hazard.NOISE, [(minutes / 60, level)], dt=1.0)
    assert rec.lex8h == pytest.approx(80.0, abs=0.25)


def test_iso_9612_lex_from_laeq_and_duration() -> None:
    """LEX,8h = LAeq,Te + 10·lg(Te/T0): 2 h at 91 dB(A) + silence → 91 − 6.02 = 84.98 dB(A)."""
    rec = engine_record("eu", Hazard.NOISE, [(2, 91.0)])
    assert rec.lex8h == pytest.approx(91.0 + 10 * np.log10(2 / 8), abs=1e-9)
    assert rec.twa8 == rec.lex8h and rec.coverage == pytest.approx((7200 + 60) / 28800)  # + the 0 dB hold


def test_osha_twa_example_through_engine_with_gaps_as_zero() -> None:
    """1910.1000(d)(1)(ii) through the engine: 2 h at 150, 2 h at 75, 4 h at 50 ppm → 81.25."""
    rec = engine_record("eu", Hazard.CO, [(2, 150.0), (2, 75.0), (4, 50.0)])
    assert rec.twa8 == pytest.approx(81.25, rel=1e-12)
