"""Names of hazards, metrics, rules, severities and verdicts, marked for translation."""

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
}

METRIC: dict[str, str] = {
    "twa8": N_("8-hour time-weighted average"),
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


def name(table: dict[str, str], key: str) -> str:
    """The marked English name of `key`, or the key itself when it has none."""
    return table.get(key, key)
