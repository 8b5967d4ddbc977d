"""Site shift calendars: SPEC §3 default pattern, YYYY-MM-DD/N naming, DST-correct zones."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from rules.errors import ConfigError
from rules.shifts import ShiftCalendar, SiteConfig, shift_label


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_default_three_shifts_utc() -> None:
    site = SiteConfig("kop-1")
    assert shift_label(site, ts("2026-11-22T06:00:00")) == "2026-11-22/1"
    assert shift_label(site, ts("2026-11-22T13:59:59")) == "2026-11-22/1"
    assert shift_label(site, ts("2026-11-22T14:00:00")) == "2026-11-22/2"
    assert shift_label(site, ts("2026-11-22T23:00:00")) == "2026-11-22/3"
    assert shift_label(site, ts("2026-11-23T05:59:59")) == "2026-11-22/3"  # date of the shift's start


@pytest.mark.parametrize(
    ("night", "hours"),
    [("2026-10-24T22:00:00", 9.0), ("2026-03-28T22:00:00", 7.0), ("2026-06-01T22:00:00", 8.0)],
)
def test_night_shift_across_dst(night: str, hours: float) -> None:
    """Europe/Belgrade: 22:00–06:00 wall clock is 9 h on fall-back night and 7 h on spring-forward."""
    cal = ShiftCalendar(SiteConfig("s", tz="Europe/Belgrade"))
    seg = cal.segment_at(ts(night, "Europe/Belgrade") + 60)
    assert seg.label == night[:10] + "/3"
    assert (seg.end_s - seg.start_s) / 3600 == hours
    assert cal.segment_at(seg.end_s).label.endswith("/1")


def test_gaps_between_shifts_are_off_shift() -> None:
    cal = ShiftCalendar(SiteConfig("s", shift_starts=("07:00", "19:00"), shift_hours=10))
    seg = cal.segment_at(ts("2026-11-22T17:30:00"))
    assert seg.label == "" and not seg.is_shift
    assert (seg.start_s, seg.end_s) == (ts("2026-11-22T17:00:00"), ts("2026-11-22T19:00:00"))


def test_vectorized_locate_matches_scalar() -> None:
    cal = ShiftCalendar(SiteConfig("s", tz="America/New_York"))
    t = ts("2026-03-07T00:00:00") + np.arange(0, 5 * 86400, 977.0)
    idx = cal.locate(t)
    assert np.all(cal.starts[idx] <= t) and np.all(t < cal.ends[idx])
    assert [cal.labels[i] for i in idx[:3]] == [shift_label(cal.site, float(x)) for x in t[:3]]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"tz": "Mars/Olympus"}, "tz"), ({"shift_starts": ("6h",)}, "shift_starts"),
     ({"shift_starts": ("14:00", "06:00")}, "shift_starts"), ({"shift_hours": 9.0}, "shift_hours"),
     ({"shift_hours": 0.0}, "shift_hours")],
)  # fmt: skip
def test_bad_site_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"site 'x': field '{field}'"):
        SiteConfig("x", **kwargs)  # type: ignore[arg-type]
