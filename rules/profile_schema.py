"""Validation of one limit-profile table (a TOML file, or an override from the config file).

Each check names the file, the entry and the field, so a bad profile fails at start-up with a
message an operator can act on. Thresholds are converted to the hazard's canonical unit here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from rules.errors import ConfigError
from rules.results import Averaging, Direction, Limit
from rules.types import CANONICAL_UNIT, SOUND_LEVEL_HAZARDS, Hazard, RuleKind, Severity

#: Rules a profile may set limits for (the health rules belong to the alert stage).
EXPOSURE_RULES = (RuleKind.LEVEL, RuleKind.STEL, RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE)
#: Units accepted in a profile besides the canonical one: factor to the canonical unit (SPEC §2.1).
UNIT_FACTORS: dict[Hazard, dict[str, float]] = {
    Hazard.CH4: {"ppm": 1e-4},
    Hazard.CO: {"ppb": 1e-3},
    Hazard.H2S: {"ppb": 1e-3},
    Hazard.NO2: {"ppb": 1e-3},
    Hazard.NO: {"ppb": 1e-3},
    Hazard.SO2: {"ppb": 1e-3},
    Hazard.CO2: {"%vol": 1e4},
    Hazard.RESPIRABLE_DUST: {"ug/m3": 1e-3},
    Hazard.SILICA: {"ug/m3": 1e-3},
    Hazard.DPM: {"ug/m3": 1e-3},
}
_LIMIT_KEYS = frozenset(
    {"hazard", "rule", "severity", "threshold", "unit", "direction", "clear_at", "label", "source", "action",
     "integration_db", "averaging"}
)  # fmt: skip
_MIXTURE_KEYS = frozenset({"name", "hazards", "basis", "severity", "threshold", "label", "source", "action"})
_NOISE_KEYS = frozenset({"criterion_db", "exchange_db", "threshold_db"})
_E = TypeVar("_E", Hazard, RuleKind, Severity, Direction, Averaging)
_TOP_KEYS = frozenset({"name", "title", "extends", "noise", "limit", "mixture", "remove"})


@dataclass(frozen=True, slots=True)
class MixtureSpec:
    """Σ Ci/Li over `hazards` of one device (29 CFR 1910.1000(d)(2)(i)); Li = each gas's limit."""

    name: str
    hazards: tuple[Hazard, ...]
    basis: RuleKind  # twa or stel: which limit of each gas is Li, and which figure is Ci
    severity: Severity
    threshold: float
    label: str
    source: str
    action: str


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """One profile table as written, validated, before `extends` is resolved."""

    name: str
    title: str
    extends: str | None
    origin: str
    noise: dict[str, float]
    limits: tuple[Limit, ...]
    mixtures: tuple[MixtureSpec, ...]
    removes: tuple[tuple[Hazard, RuleKind], ...]


def parse_profile(raw: Mapping[str, Any], origin: str, name: str | None = None) -> ProfileSpec:
    """Validate one profile table; `origin` (file or config entry) prefixes every error."""
    _no_unknown(raw, _TOP_KEYS, origin)
    pname = name if name is not None else _text(raw, "name", origin)
    if name is not None and "name" in raw and raw["name"] != name:
        raise ConfigError(f"{origin}: field 'name': {raw['name']!r} differs from {name!r}")
    extends = raw.get("extends")
    if extends is not None and not isinstance(extends, str):
        raise ConfigError(f"{origin}: field 'extends': must be a profile name")
    noise = _noise(raw.get("noise", {}), origin)
    limits = tuple(
        _limit(entry, pname, f"{origin}: limit #{i + 1}") for i, entry in enumerate(_tables(raw, "limit", origin))
    )
    _no_duplicates(limits, origin)
    mixtures = tuple(
        _mixture(entry, f"{origin}: mixture #{i + 1}") for i, entry in enumerate(_tables(raw, "mixture", origin))
    )
    removes = tuple(
        (
            _enum(Hazard, e, "hazard", f"{origin}: remove #{i + 1}"),
            _enum(RuleKind, e, "rule", f"{origin}: remove #{i + 1}"),
        )
        for i, e in enumerate(_tables(raw, "remove", origin))
    )
    title = raw.get("title", pname)
    return ProfileSpec(pname, str(title), extends, origin, noise, limits, mixtures, removes)


def _tables(raw: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{origin}: field '{key}': must be an array of tables ([[{key}]])")
    return value


def _limit(entry: Mapping[str, Any], profile: str, where: str) -> Limit:
    hazard = _enum(Hazard, entry, "hazard", where)
    rule = _enum(RuleKind, entry, "rule", where)
    where = f"{where} ({hazard} {rule})"
    _no_unknown(entry, _LIMIT_KEYS, where)
    _check_rule(hazard, rule, where)
    direction = _enum(Direction, entry, "direction", where) if "direction" in entry else Direction.ABOVE
    if direction is Direction.BELOW and rule is not RuleKind.LEVEL:
        raise ConfigError(f"{where}: field 'direction': only level limits may be 'below'")
    unit, factor = _unit(hazard, rule, entry, where)
    threshold = _number(entry, "threshold", where) * factor
    clear_at = _number(entry, "clear_at", where) * factor if "clear_at" in entry else None
    if clear_at is not None and (clear_at > threshold if direction is Direction.ABOVE else clear_at < threshold):
        raise ConfigError(f"{where}: field 'clear_at': must be on the safe side of the threshold")
    integration = _number(entry, "integration_db", where) if "integration_db" in entry else None
    if integration is not None and rule is not RuleKind.DOSE:
        raise ConfigError(f"{where}: field 'integration_db': only dose limits have one")
    return Limit(
        profile=profile, hazard=hazard, rule=rule, severity=_severity(entry, where), threshold=threshold,
        unit=unit, direction=direction, source=_text(entry, "source", where),
        action=_text(entry, "action", where), label=_text(entry, "label", where), clear_at=clear_at,
        integration_db=integration, averaging=_averaging(entry, rule, where),
    )  # fmt: skip


def _averaging(entry: Mapping[str, Any], rule: RuleKind, where: str) -> Averaging:
    """`averaging = "8h"` (default: Σ C·t / 8 h) or `"shift"` (Σ C·t / shift length); twa only."""
    if "averaging" not in entry:
        return Averaging.EIGHT_HOURS
    averaging = _enum(Averaging, entry, "averaging", where)
    if rule is not RuleKind.TWA:
        raise ConfigError(f"{where}: field 'averaging': only twa limits have an averaging period")
    return averaging


def _check_rule(hazard: Hazard, rule: RuleKind, where: str) -> None:
    if rule not in EXPOSURE_RULES:
        raise ConfigError(f"{where}: field 'rule': use one of {', '.join(EXPOSURE_RULES)}")
    if rule in (RuleKind.LEX8H, RuleKind.DOSE) and hazard is not Hazard.NOISE:
        raise ConfigError(f"{where}: field 'rule': {rule} applies to hazard 'noise' only")
    if rule in (RuleKind.STEL, RuleKind.TWA) and hazard in SOUND_LEVEL_HAZARDS:
        raise ConfigError(f"{where}: field 'rule': use lex8h or dose for noise, not {rule}")


def _unit(hazard: Hazard, rule: RuleKind, entry: Mapping[str, Any], where: str) -> tuple[str, float]:
    canonical = "%" if rule is RuleKind.DOSE else CANONICAL_UNIT[hazard]
    unit = entry.get("unit", canonical)
    if unit == canonical:
        return canonical, 1.0
    factor = UNIT_FACTORS.get(hazard, {}).get(unit) if rule is not RuleKind.DOSE else None
    if factor is None:
        allowed = [canonical, *(UNIT_FACTORS.get(hazard, {}) if rule is not RuleKind.DOSE else ())]
        raise ConfigError(f"{where}: field 'unit': {unit!r} is not accepted; use {' or '.join(allowed)}")
    return canonical, factor


def _mixture(entry: Mapping[str, Any], where: str) -> MixtureSpec:
    _no_unknown(entry, _MIXTURE_KEYS, where)
    name = _text(entry, "name", where)
    where = f"{where} ({name})"
    raw = entry.get("hazards")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ConfigError(f"{where}: field 'hazards': list at least two gases")
    hazards = tuple(_enum(Hazard, {"hazards": h}, "hazards", where) for h in raw)
    if len(set(hazards)) != len(hazards) or set(hazards) & SOUND_LEVEL_HAZARDS:
        raise ConfigError(f"{where}: field 'hazards': distinct gases or dusts only, no noise")
    basis = _enum(RuleKind, entry, "basis", where) if "basis" in entry else RuleKind.TWA
    if basis not in (RuleKind.TWA, RuleKind.STEL):
        raise ConfigError(f"{where}: field 'basis': use 'twa' or 'stel'")
    threshold = _number(entry, "threshold", where) if "threshold" in entry else 1.0
    return MixtureSpec(
        name, hazards, basis, _severity(entry, where), threshold, _text(entry, "label", where),
        _text(entry, "source", where), _text(entry, "action", where),
    )  # fmt: skip


def _noise(raw: Any, origin: str) -> dict[str, float]:
    where = f"{origin}: [noise]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown(raw, _NOISE_KEYS, where)
    out = {k: _number(raw, k, where) for k in raw}
    if "exchange_db" in out and out["exchange_db"] <= 0:
        raise ConfigError(f"{where}: field 'exchange_db': must be > 0")
    return out


def _severity(entry: Mapping[str, Any], where: str) -> Severity:
    sev = _enum(Severity, entry, "severity", where)
    if sev is Severity.MALFUNCTION:
        raise ConfigError(f"{where}: field 'severity': use warning, alarm or critical")
    return sev


def _enum(kind: type[_E], entry: Mapping[str, Any], key: str, where: str) -> _E:
    value = entry.get(key)
    allowed = ", ".join(str(m) for m in kind)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: field '{key}': {value!r} is not one of {allowed}")
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{where}: field '{key}': {value!r} is not one of {allowed}") from None


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: field '{key}': must be a finite number, got {value!r}")
    return float(value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field '{key}': must be a non-empty text")
    return value.strip()


def _no_unknown(entry: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _no_duplicates(limits: tuple[Limit, ...], origin: str) -> None:
    seen: set[tuple[Hazard, RuleKind, Direction, float]] = set()
    for i, lim in enumerate(limits):
        key = (lim.hazard, lim.rule, lim.direction, lim.threshold)
        if key in seen:
            raise ConfigError(f"{origin}: limit #{i + 1} ({lim.hazard} {lim.rule}): field 'threshold': duplicate")
        seen.add(key)
