"""Checking `--site`, `--hazard`, `--severity`, `--rule` values against the values that exist.

A value nothing can match is an error naming the known values (and the closest one), never an
empty "no ... match": wrong input must not look like "no data". Hazard names are
case-insensitive and accept the common names of the gases (`methane` → ch4).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from reports.files import check_out_dir
from rules.errors import ConfigError
from rules.types import Hazard, RuleKind, Severity
from storage.base import RecordKind, Store

#: Hazard values of alerts about the monitoring itself (docs/spec-changes.md §2.2 health alerts).
HEALTH_HAZARDS = ("device", "sink", "store", "gateway")
#: Common names accepted for a hazard (lower case, spaces and hyphens as underscores).
HAZARD_ALIASES: dict[str, Hazard] = {
    "methane": Hazard.CH4, "firedamp": Hazard.CH4,
    "carbon_monoxide": Hazard.CO,
    "hydrogen_sulfide": Hazard.H2S, "hydrogen_sulphide": Hazard.H2S,
    "nitrogen_dioxide": Hazard.NO2, "nitric_oxide": Hazard.NO, "nitrogen_monoxide": Hazard.NO,
    "sulfur_dioxide": Hazard.SO2, "sulphur_dioxide": Hazard.SO2,
    "carbon_dioxide": Hazard.CO2, "oxygen": Hazard.O2,
    "dust": Hazard.RESPIRABLE_DUST, "respirable_coal_dust": Hazard.RESPIRABLE_DUST,
    "respirable_crystalline_silica": Hazard.SILICA, "quartz": Hazard.SILICA,
    "diesel_particulate_matter": Hazard.DPM, "diesel_particulate": Hazard.DPM,
    "peak_noise": Hazard.NOISE_PEAK,
}  # fmt: skip


def _norm(raw: str) -> str:
    return "_".join(raw.strip().lower().replace("-", " ").replace("_", " ").split())


def _unknown(option: str, raw: str, known: Iterable[str], what: str) -> ConfigError:
    names = sorted(set(known))
    close = difflib.get_close_matches(raw.lower(), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listed = ", ".join(names) if names else "none"
    return ConfigError(f"{option} {raw!r}: unknown {what}{hint}; known: {listed}")


def hazard(raw: str | None, kind: RecordKind) -> str | None:
    """The stored hazard value for `--hazard` (case-insensitive, common names accepted)."""
    if raw is None:
        return None
    key = _norm(raw)
    known = [str(h) for h in Hazard] + (list(HEALTH_HAZARDS) if kind is RecordKind.ALERTS else [])
    if key in known:
        return key
    if key in HAZARD_ALIASES:
        return str(HAZARD_ALIASES[key])
    raise _unknown("--hazard", raw, known, "hazard")


def choice(raw: str | None, option: str, values: Iterable[str], what: str) -> str | None:
    if raw is None:
        return None
    key = _norm(raw)
    known = list(values)
    if key in known:
        return key
    raise _unknown(option, raw, known, what)


def severity(raw: str | None) -> str | None:
    return choice(raw, "--severity", [str(s) for s in Severity], "severity")


def rule(raw: str | None) -> str | None:
    return choice(raw, "--rule", [str(r) for r in RuleKind], "rule")


def alerts_only(kind: RecordKind, **options: str | None) -> None:
    """`--rule`/`--severity` filter alerts; for other kinds they would be silently ignored."""
    given = [f"--{name}" for name, value in options.items() if value is not None]
    if given and kind is not RecordKind.ALERTS:
        raise ConfigError(f"{' and '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} to --kind alerts")


def site(raw: str | None, store: Store, configured: Iterable[str] = ()) -> str | None:
    """`--site` must name a site the store holds records of (exact, case-sensitive like the data)."""
    if raw is None:
        return None
    known = set(store.sites())
    if raw in known:
        return raw
    if raw in set(configured):
        raise ConfigError(f"--site {raw!r} is configured but the store holds no records of it yet")
    if not known:
        raise ConfigError(f"--site {raw!r}: the store holds no records of any site yet")
    raise _unknown("--site", raw, known, "site")


def new_folder(path: Path, option: str, *, force: bool | None = None, what: str = "the output") -> None:
    """An output folder must be new or empty (or `force`), and not a symbolic link; `force=None`:
    the command has no --force. The one rule of every --out: reports/files.py."""
    check_out_dir(path, force=bool(force), what=what, forceable=force is not None, option=option)
