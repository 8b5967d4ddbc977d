"""Limit profiles: built-in content (every shipped number confirmed, with source and action),
the conformance levels of SPEC §2.2 / the contract check, extends/overrides, and errors that
name the file, entry and field."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rules.errors import ConfigError
from rules.profiles import ProfileBook, describe_limits
from rules.results import Direction
from rules.types import Hazard, RuleKind, Severity

LIMITS_CSV = Path("/work/shared/reference/limits.csv")


@pytest.fixture(scope="module")
def book() -> ProfileBook:
    return ProfileBook.load()


def tiers(book: ProfileBook, profile: str, hazard: Hazard, rule: RuleKind) -> list[tuple[float, Severity]]:
    return [(book.limits[i].threshold, book.limits[i].severity) for i in book.profile(profile).tiers(hazard, rule)]


def test_builtin_names(book: ProfileBook) -> None:
    assert {"eu", "eu-mine", "us-msha", "rs-mining", "kz-mining"} <= set(book.names())


@pytest.mark.parametrize("profile", ["rs-mining", "kz-mining"])
def test_national_mining_profiles_ship_no_unsourced_number(book: ProfileBook, profile: str) -> None:
    """Issue 13: no Serbian or Kazakh number could be read in a primary text, so none is shipped;
    the file names the acts (and says so) instead of inventing values."""
    assert book.profile(profile).limit_ids == ()
    text = (Path(__file__).parent.parent / "rules" / "profiles" / f"{profile}.toml").read_text()
    assert "SHIPS NO NUMBERS" in text
    assert ("Sl. list SFRJ" in text and "Sl. glasnik RS" in text) if profile == "rs-mining" else ("№ 352" in text)


def test_eu_mine_judges_methane_and_oxygen_with_us_sources(book: ProfileBook) -> None:
    assert tiers(book, "eu-mine", Hazard.CH4, RuleKind.LEVEL) == [(1.0, Severity.ALARM), (1.5, Severity.CRITICAL)]
    assert tiers(book, "eu-mine", Hazard.O2, RuleKind.LEVEL) == [(19.5, Severity.CRITICAL)]
    assert tiers(book, "eu-mine", Hazard.CO, RuleKind.STEL) == tiers(book, "eu", Hazard.CO, RuleKind.STEL)
    for hazard in (Hazard.CH4, Hazard.O2):
        for i in book.profile("eu-mine").tiers(hazard, RuleKind.LEVEL):
            assert "30 " in book.limits[i].source and "US federal" in book.limits[i].source


@pytest.mark.parametrize("profile", ["eu", "eu-mine", "us-msha"])
def test_every_limit_has_source_action_label(book: ProfileBook, profile: str) -> None:
    for i in book.profile(profile).limit_ids:
        lim = book.limits[i]
        assert lim.profile == profile
        assert lim.source and lim.action and lim.label, lim


def test_msha_methane_oxygen_levels(book: ProfileBook) -> None:
    """30 USC 863(h)(2); 30 CFR 75.323(b): 1.0 % alarm, 1.5 % critical, both clear below 1.0 %."""
    ids = book.profile("us-msha").tiers(Hazard.CH4, RuleKind.LEVEL)
    got = [(book.limits[i].threshold, book.limits[i].severity, book.limits[i].clear_at) for i in ids]
    assert got == [(1.0, Severity.ALARM, 1.0), (1.5, Severity.CRITICAL, 1.0)]
    assert "30 USC 863(h)(2)" in book.limits[ids[0]].source and "75.323(b)(1)" in book.limits[ids[0]].source
    (o2,) = book.profile("us-msha").tiers(Hazard.O2, RuleKind.LEVEL)
    lim = book.limits[o2]
    assert (lim.threshold, lim.direction) == (19.5, Direction.BELOW)
    assert lim.severity in (Severity.ALARM, Severity.CRITICAL) and "75.321" in lim.source


def test_eu_co_noise(book: ProfileBook) -> None:
    """Directive (EU) 2017/164 CO 100 ppm STEL / 20 ppm TWA; 2003/10/EC Art. 3 noise tiers."""
    assert tiers(book, "eu", Hazard.CO, RuleKind.STEL) == [(100.0, Severity.ALARM)]
    assert tiers(book, "eu", Hazard.CO, RuleKind.TWA) == [(20.0, Severity.ALARM)]
    assert "2017/164" in book.limits[book.profile("eu").tiers(Hazard.CO, RuleKind.STEL)[0]].source
    assert tiers(book, "eu", Hazard.NOISE, RuleKind.LEX8H) == [
        (80.0, Severity.WARNING), (85.0, Severity.WARNING), (87.0, Severity.ALARM)
    ]  # fmt: skip
    assert tiers(book, "eu", Hazard.NOISE_PEAK, RuleKind.LEVEL) == [
        (135.0, Severity.WARNING), (137.0, Severity.WARNING), (140.0, Severity.ALARM)
    ]  # fmt: skip
    assert book.profile("eu").noise.exchange_db == 3.0


def test_eu_has_no_invented_methane_or_oxygen(book: ProfileBook) -> None:
    assert not book.profile("eu").rules_for(Hazard.CH4)
    assert not book.profile("eu").rules_for(Hazard.O2)


def test_units_converted_to_canonical(book: ProfileBook) -> None:
    """MSHA silica 50/25 µg/m3 and CO2 0.5 % are stored in mg/m3 and ppm."""
    assert tiers(book, "us-msha", Hazard.SILICA, RuleKind.TWA) == [
        (0.025, Severity.WARNING),
        (0.05, Severity.ALARM),
    ]
    assert tiers(book, "us-msha", Hazard.CO2, RuleKind.LEVEL) == [(5000.0, Severity.ALARM)]
    assert tiers(book, "us-msha", Hazard.DPM, RuleKind.TWA) == [(0.16, Severity.ALARM)]


def _confirmed_values() -> set[tuple[str, float]]:
    """(regime prefix, value) pairs marked confirmed=yes, in the units the CSV uses."""
    out = set()
    with LIMITS_CSV.open() as f:
        for row in csv.DictReader(f):
            if row["confirmed"] == "yes":
                out.add((row["regime"].split()[0].split("-")[0], float(row["value"])))
    return out


@pytest.mark.skipif(not LIMITS_CSV.exists(), reason="reference limits.csv not available")
@pytest.mark.parametrize(("profile", "regimes"), [("eu", {"EU"}), ("us-msha", {"US"}), ("eu-mine", {"EU", "US"})])
def test_only_confirmed_numbers_are_shipped(book: ProfileBook, profile: str, regimes: set[str]) -> None:
    """Every shipped threshold appears as a confirmed=yes value of its regime in limits.csv."""
    confirmed = {v for r, v in _confirmed_values() if r in regimes}
    scale = {"mg/m3": (1.0, 1000.0), "ppm": (1.0, 1e-4), "%vol": (1.0,), "%": (1.0,)}
    for i in book.profile(profile).limit_ids:
        lim = book.limits[i]
        value = lim.threshold
        if lim.rule is RuleKind.DOSE:  # dose % <-> TWA8 dBA (Table 62-2: 50 % = 85, 100 % = 90)
            value = {50.0: 85.0, 100.0: 90.0}[value]
        candidates = {round(value * f, 9) for f in scale.get(lim.unit, (1.0,))}
        assert candidates & {round(c, 9) for c in confirmed}, f"{profile}: {lim.hazard} {lim.rule} {lim.threshold}"


def test_describe_limits_columns(book: ProfileBook) -> None:
    rows = describe_limits(book, "us-msha")
    assert rows and list(rows[0]) == [
        "hazard", "rule", "severity", "threshold", "unit", "direction", "label", "source", "action", "averaging"
    ]  # fmt: skip
    assert {(r["hazard"], r["rule"], r["averaging"]) for r in rows if r["averaging"]} >= {
        ("respirable_dust", "twa", "shift"), ("dpm", "twa", "8h"), ("silica", "twa", "8h")
    }  # fmt: skip
    assert all(r["averaging"] == "" for r in rows if r["rule"] not in ("twa", "twa_projected"))
    ch4 = [r for r in rows if r["hazard"] == "ch4"]
    assert [r["threshold"] for r in ch4] == ["1", "1.5"]
    with pytest.raises(ConfigError, match="not found"):
        describe_limits(book, "nope")


NATIONAL = """
name = "eu-national"
title = "EU + national mining law (example)"
extends = "eu"

[[limit]]
hazard = "ch4"
rule = "level"
severity = "alarm"
threshold = 1.0
unit = "%vol"
label = "methane 1 %"
source = "National mining regulation (example)"
action = "Cut power, ventilate."

[[limit]]
hazard = "co"
rule = "twa"
severity = "alarm"
threshold = 15000
unit = "ppb"
label = "CO national 8-h limit"
source = "National OEL list (example)"
action = "Reduce exposure."
"""


def test_extends_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "national.toml").write_text(NATIONAL)
    book = ProfileBook.load([tmp_path])
    assert tiers(book, "eu-national", Hazard.CH4, RuleKind.LEVEL) == [(1.0, Severity.ALARM)]
    assert tiers(book, "eu-national", Hazard.CO, RuleKind.TWA) == [(15.0, Severity.ALARM)]  # replaced
    assert tiers(book, "eu-national", Hazard.CO, RuleKind.STEL) == [(100.0, Severity.ALARM)]  # inherited
    assert book.limits[book.profile("eu-national").tiers(Hazard.CO, RuleKind.STEL)[0]].profile == "eu-national"
    assert tiers(book, "eu", Hazard.CO, RuleKind.TWA) == [(20.0, Severity.ALARM)]  # parent untouched


def test_override_from_config() -> None:
    book = ProfileBook.load(
        overrides={
            "us-msha": {"remove": [{"hazard": "co2", "rule": "level"}]},
            "site-intake": {
                "extends": "us-msha",
                "limit": [{"hazard": "respirable_dust", "rule": "twa", "severity": "alarm",
                           "threshold": 0.5, "label": "intake", "source": "30 CFR 70.100(b)(2)",
                           "action": "Check intake air."}],
            },
        }
    )  # fmt: skip
    assert not book.profile("us-msha").tiers(Hazard.CO2, RuleKind.LEVEL)
    assert tiers(book, "site-intake", Hazard.RESPIRABLE_DUST, RuleKind.TWA) == [(0.5, Severity.ALARM)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\n[[limit]]\nhazard = "co"\nrule = "twa"\nseverity = "alarm"\nthreshold = "high"\n'
         'label = "l"\nsource = "s"\naction = "a"\n', r"x\.toml: limit #1 \(co twa\): field 'threshold'"),
        ('name = "x"\n[[limit]]\nhazard = "cox"\n', r"limit #1: field 'hazard': 'cox'"),
        ('name = "x"\n[[limit]]\nhazard = "co"\nrule = "twa"\nseverity = "alarm"\nthreshold = 1\n'
         'label = "l"\nsource = "s"\n', r"limit #1 \(co twa\): field 'action'"),
        ('name = "x"\n[[limit]]\nhazard = "co"\nrule = "level"\nseverity = "alarm"\nthreshold = 1\n'
         'unit = "mg/m3"\nlabel = "l"\nsource = "s"\naction = "a"\n', r"field 'unit'"),
        ('name = "x"\n[[limit]]\nhazard = "co"\nrule = "lex8h"\nseverity = "alarm"\nthreshold = 1\n'
         'label = "l"\nsource = "s"\naction = "a"\n', r"field 'rule': lex8h applies to hazard 'noise'"),
        ('name = "x"\nextends = "nowhere"\n', r"field 'extends': no profile named 'nowhere'"),
        ('name = "eu"\n', r"profile 'eu' is already defined"),
        ('name = "x"\ncolour = 1\n', r"unknown field 'colour'"),
        ("name = [", r"not valid TOML"),
    ],
)  # fmt: skip
def test_bad_profile_names_file_entry_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        ProfileBook.load([tmp_path])


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "a"\nextends = "b"\n')
    (tmp_path / "b.toml").write_text('name = "b"\nextends = "a"\n')
    with pytest.raises(ConfigError, match="cycle"):
        ProfileBook.load([tmp_path])


def test_missing_folder() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ProfileBook.load([Path("/nonexistent/profiles")])
