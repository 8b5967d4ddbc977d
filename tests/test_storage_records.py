"""Pure helpers shared by the stores: line protocol text, time quantisation, tag checks."""

from __future__ import annotations

import numpy as np
import pytest

from rules.types import ChannelKey, Hazard
from storage import lineproto as lp
from storage import records as rec
from storage.base import RecordKind
from tests.storage_data import KEYS, T0, alert, batch, exposure


def test_reading_lines_use_cached_sorted_escaped_prefixes() -> None:
    keys = [*KEYS, ChannelKey("kop 1", "a,b", "c=d", Hazard.CO, worker="Zoë")]
    cache = lp.PrefixCache()
    (lines,) = lp.reading_lines(keys, batch([4, 0], [T0 + 0.0015, T0], [12.0, 1e-07]), cache, 100)
    assert lines == [
        r"reading,device=c\=d,hazard=co,site=kop\ 1,worker=Zoë,zone=a\,b value=12.0 1795327200002",
        "reading,device=gd-17,hazard=co,site=kop-1,zone=north-adit value=1e-07 1795327200000",
    ]
    assert cache(keys[4]) is cache(keys[4])


def test_reading_lines_come_in_chunks() -> None:
    chunks = list(lp.reading_lines(KEYS, batch([0] * 7, [T0 + i for i in range(7)], [1.0] * 7), lp.PrefixCache(), 3))
    assert [len(c) for c in chunks] == [3, 3, 1]


def test_alert_line_quotes_strings_and_leaves_out_missing_fields() -> None:
    line = lp.alert_line(alert(value=None, by='J. "Kuba" Nowak', hazard=""))
    head, fields, t = (
        line[: line.index(" ")],
        line[line.index(" ") + 1 : line.rindex(" ")],
        line[line.rindex(" ") + 1 :],
    )
    assert head == "alert,device=gd-17,event=raised,rule=stel,severity=alarm,site=kop-1,zone=north-adit"  # no hazard
    assert 'by="J. \\"Kuba\\" Nowak"' in fields and "value=" not in fields.replace("_value", "")
    assert 'message="CO 15-min average 112 ppm exceeds the 100 ppm \\"STEL\\", \\\\ here"' in fields
    assert "threshold=100.0" in fields and "note=" not in fields
    assert t == "1795327300500"


def test_exposure_line_has_limits_as_float_fields_and_bools() -> None:
    line = lp.exposure_line(exposure(stel15_max=None, limits={"twa8": 20, "limit_stel15": 100}))
    assert line.startswith(
        "exposure,device=gd-17,hazard=co,shift=2026-11-22/1,site=kop-1,zone=north-adit twa8=12.5,peak=112.4,"
    )
    assert "stel15_max" not in line and "lex8h" not in line
    assert "final=true,sensor_faulty=false,limit_stel15=100.0,limit_twa8=20.0 1795327200000" in line


def test_field_set_never_writes_integers_or_non_finite_numbers() -> None:
    assert lp.field_set({"a": 3, "b": float("nan"), "c": float("inf"), "d": True, "e": None}) == "a=3.0,d=true"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("ok value", False), ("a\\b", False), ("tab\there", False), ("ü€😀", False), ("x\ny", True),
     ("x\ry", True), ("nul\x00", True), ("end\\", True), ("a\\,b", True), ("a\\ b", True), ("a\\=b", True)],
)  # fmt: skip
def test_tag_problem(value: str, problem: bool) -> None:
    assert (rec.tag_problem("worker", value) is not None) == problem


def test_time_is_quantised_to_milliseconds_and_bounds_are_float_safe() -> None:
    assert rec.to_ms(1795344671.1234) == 1795344671123
    assert rec.ms_bound(1795344671.123) == 1795344671123  # 1795344671.123 * 1000 is ...123.0001
    assert rec.ms_bound(1795344671.1231) == 1795344671124
    assert rec.ms_rfc3339(1795327200500) == "2026-11-22T06:00:00.500Z"


@pytest.mark.parametrize("n_keys", [5, 10_000])  # presence table, and np.unique for sparse use
def test_channels_used_matches_unique(n_keys: int) -> None:
    channel = np.array([4, 1, 1, 3, 4, 0], np.int64)
    ids, inverse = rec.channels_used(channel, n_keys)
    uniq, inv = np.unique(channel, return_inverse=True)
    assert ids.tolist() == uniq.tolist() and inverse.tolist() == inv.tolist()


def test_retention_days_by_kind() -> None:
    r = rec.Retention(readings_days=30, exposures_days=0, alerts_days=730)
    assert [r.days(k) for k in RecordKind] == [30, 0, 730]
