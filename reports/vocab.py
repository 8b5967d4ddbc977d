"""Names of hazards, metrics, rules, severities, verdicts, directions and units, marked for translation.

Reader-facing text never shows a code (`stel`, `twa_projected`, `above`, `%vol`): it shows these.
"""

from __future__ import annotations

from reports.i18n import N_

HAZARD: dict[str, str] = {
    "ch4": N_("Methane (CH₄)"),
    "co": N_("Carbon monoxide (CO)"),
    "h2s": N_("Hydrogen sulphide (H₂S)"),
    "no2": N_("Nitrogen dioxide (NO₂)"),
    "no": N_("Nitric oxide (NO)"),
    "so2": N_("Sulphur dioxide (SO₂)"),
    "co2": N_("Carbon dioxide (CO₂)"),
    "o2": N_("Oxygen (O₂)"),
    "respirable_dust": N_("Respirable dust"),
    "silica": N_("Respirable crystalline silica"),
    "dpm": N_("Diesel particulate matter"),
    "noise": N_("Noise"),
    "noise_peak": N_("Peak noise"),
    # subjects of health and configuration alerts (docs/spec-changes.md)
    "device": N_("the device itself"),
    "sink": N_("alert delivery"),
    "store": N_("data store"),
}

METRIC: dict[str, str] = {
    "twa8": N_("8-hour time-weighted average"),
    "shift_avg": N_("shift average"),
    "lex8h": N_("daily noise exposure level LEX,8h"),
    "dose": N_("noise dose"),
}

RULE: dict[str, str] = {
    "level": N_("instant level"),
    "stel": N_("15-minute average"),
    "twa": N_("shift average"),
    "lex8h": N_("daily noise exposure"),
    "dose": N_("noise dose"),
    "offline": N_("device offline"),
    "out_of_range": N_("reading out of range"),
    "stuck": N_("sensor stuck"),
    "calibration_due": N_("calibration due"),
    "gap": N_("data gap"),
    "mixture": N_("gas mixture index"),
    "twa_projected": N_("shift average heading for the limit"),
    "not_judged": N_("hazard measured without a limit"),
    "integrity": N_("alarm messages tampered with"),
    "capacity": N_("readings refused: too many channels"),
}

SEVERITY: dict[str, str] = {
    "warning": N_("warning"),
    "alarm": N_("alarm"),
    "critical": N_("critical"),
    "malfunction": N_("malfunction"),
}

VERDICT: dict[str, str] = {
    "compliant": N_("compliant"),
    "non_compliant": N_("not compliant"),
    "no_decision": N_("no decision"),
    "insufficient": N_("too few shifts"),
}

METHOD: dict[str, str] = {
    "preliminary": N_("preliminary test"),
    "statistical": N_("statistical test"),
    "none": N_("no test"),
}


DIRECTION: dict[str, str] = {
    "above": N_("at or above"),
    "below": N_("at or below"),
}

#: Units as shown to readers (the stored codes stay in summary.json and the CSV files).
UNIT: dict[str, str] = {
    "ppm": N_("ppm"),
    "%vol": N_("% vol"),
    "mg/m3": N_("mg/m³"),
    "dBA": N_("dB(A)"),
    "dBC": N_("dB(C)"),
    "%": N_("%"),
    # units of health and configuration alerts
    "s": N_("s"),
    "d": N_("days"),
    "readings": N_("readings"),
    "messages": N_("messages"),
    "incidents": N_("incidents"),
    "devices": N_("devices"),
}
#: Units shown as nothing (a dimensionless index, such as a gas mixture's Σ C/L).
UNITLESS = frozenset({"1", ""})

#: Why a shift does not enter the EN 689 test (`exposure_stats.EXCLUSION_REASONS`).
EXCLUSION: dict[str, str] = {
    "sensor_faulty": N_("sensor faulty"),
    "no_result": N_("no shift result"),
    "short_coverage": N_("data over less than 6 of 8 hours"),
}


def name(table: dict[str, str], key: str) -> str:
    """The marked English name of `key`, or the key itself when it has none."""
    return table.get(key, key)
