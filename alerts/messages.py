"""Plain-language alert messages, e.g. "CO 15-min average 112 ppm exceeds the 100 ppm STEL"."""

from __future__ import annotations

import math

from rules.results import Averaging, Direction
from rules.types import RuleKind, Severity

HAZARD_NAME: dict[str, str] = {
    "ch4": "CH4",
    "co": "CO",
    "h2s": "H2S",
    "no2": "NO2",
    "no": "NO",
    "so2": "SO2",
    "co2": "CO2",
    "o2": "O2",
    "respirable_dust": "Respirable dust",
    "silica": "Silica",
    "dpm": "DPM",
    "noise": "Noise",
    "noise_peak": "Noise peak",
}

#: What figure the rule compares, placed after the hazard name ("" for an instantaneous level).
RULE_FIGURE: dict[RuleKind, str] = {
    RuleKind.LEVEL: "",
    RuleKind.STEL: "15-min average",
    RuleKind.TWA: "shift average",
    RuleKind.LEX8H: "daily exposure",
    RuleKind.DOSE: "dose",
    RuleKind.MIXTURE: "mixture index",
}

#: Name of the limit when the profile gives no `label`.
RULE_LABEL: dict[RuleKind, str] = {
    RuleKind.STEL: "STEL",
    RuleKind.TWA: "8-h TWA limit",
    RuleKind.LEX8H: "LEX,8h limit",
    RuleKind.DOSE: "dose limit",
    RuleKind.MIXTURE: "mixture limit",
}


def fmt_value(v: float) -> str:
    """About three significant digits, no trailing zeros: 112.4 → "112", 0.054 → "0.054"."""
    if not math.isfinite(v) or v == 0:
        return f"{v:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(v))))
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h".replace(".0 h", " h")


def with_unit(v: float, unit: str) -> str:
    return f"{fmt_value(v)} {unit}" if unit not in ("", "%") else f"{fmt_value(v)}{unit}"


def limit_label(rule: RuleKind, severity: Severity, label: str) -> str:
    if label:
        return label
    return RULE_LABEL.get(rule, f"{severity} level")


#: The figure a `twa` limit compares, by its averaging period (docs/exposure.md).
TWA_FIGURE: dict[Averaging, str] = {Averaging.EIGHT_HOURS: "8-h TWA", Averaging.SHIFT: "average over the shift"}


def subject_phrase(hazard: str, rule: RuleKind, averaging: Averaging | None = None) -> str:
    name = HAZARD_NAME.get(hazard, hazard)
    figure = TWA_FIGURE[averaging] if rule is RuleKind.TWA and averaging is not None else RULE_FIGURE.get(rule, "")
    return f"{name} {figure}" if figure else name


def exceed_message(
    hazard: str, rule: RuleKind, severity: Severity, value: float, threshold: float,
    unit: str, direction: Direction, label: str, averaging: Averaging | None = None,
) -> str:  # fmt: skip
    """ "CO 15-min average 112 ppm exceeds the 100 ppm STEL" / "O2 18.9 %vol is below ..." """
    if direction is Direction.BELOW:
        verb = "is below" if value < threshold else "is at"
    else:
        verb = "exceeds" if value > threshold else "reaches"
    what = limit_label(rule, severity, label)
    head = f"{subject_phrase(hazard, rule, averaging)} {with_unit(value, unit)}"
    return f"{head} {verb} the {with_unit(threshold, unit)} {what}"


def flap_suffix(flaps: int, window_s: float) -> str:
    times = "once" if flaps == 1 else f"{flaps} times"
    return (
        f" (raised again {times} within {fmt_duration(window_s)} of clearing: flapping; "
        f"it now clears only after {fmt_duration(window_s)} back within the limit)"
    )


def clear_message(
    hazard: str, rule: RuleKind, value: float | None, clear_level: float | None, unit: str,
    direction: Direction, hold_s: float, what: str,
) -> str:  # fmt: skip
    """ "CO 15-min average back to 80 ppm (at or below 95 ppm for 1 min): STEL alert cleared" """
    head = subject_phrase(hazard, rule)
    if value is None or clear_level is None:
        return f"{head}: {what} alert cleared"
    side = "above" if direction is Direction.BELOW else "below"
    return (
        f"{head} back to {with_unit(value, unit)} (at or {side} {with_unit(clear_level, unit)} "
        f"for {fmt_duration(hold_s)}): {what} alert cleared"
    )


def escalate_message(after_s: float, raised_message: str) -> str:
    return f"Not acknowledged within {fmt_duration(after_s)}: {raised_message}"


def rise_message(before: str, after: str, message: str) -> str:
    return f"Rose from {before} to {after}: {message}"


def ack_message(by: str, note: str | None) -> str:
    return f"Acknowledged by {by}: {note}" if note else f"Acknowledged by {by}"


#: Citation carried by health (malfunction) alerts, per rule.
HEALTH_SOURCE: dict[RuleKind, str] = {
    RuleKind.OFFLINE: "30 CFR 75.351(c)(1): signal on interruption of circuit continuity / malfunction",
    RuleKind.OUT_OF_RANGE: "30 CFR 75.351(c)(1): malfunction signal (value outside the sensor's range)",
    RuleKind.STUCK: "30 CFR 75.351(c)(1): malfunction signal (sensor output not varying)",
    RuleKind.GAP: "30 CFR 75.351(c)(1): malfunction signal (readings lost in transmission)",
    RuleKind.CALIBRATION_DUE: "30 CFR 75.351(n): calibration at intervals of at most 31 days",
    RuleKind.NOT_JUDGED: "oshmon configuration: the site's limit profile has no limit for this hazard",
    RuleKind.INTEGRITY: "30 CFR 75.351(c)(1): malfunction signal (alarm state changed outside the monitoring system)",
    RuleKind.CAPACITY: "30 CFR 75.351(c)(1): malfunction signal (readings refused: over the site's inventory)",
}

#: What the officer should do about a health alert, per rule.
HEALTH_ACTION: dict[RuleKind, str] = {
    RuleKind.OFFLINE: (
        "Check the device's power, battery and network; until it reports again, cover the area with a portable detector"
    ),
    RuleKind.OUT_OF_RANGE: "Treat its readings as unreliable; bump-test, recalibrate or replace the sensor",
    RuleKind.STUCK: "Treat its readings as unreliable; bump-test the sensor and check it is open to the air",
    RuleKind.GAP: "Check the device's network link and buffering; readings in the gap count as no data",
    RuleKind.CALIBRATION_DUE: "Calibrate the sensor with a known gas concentration; record the calibration",
    RuleKind.NOT_JUDGED: (
        "No reading of this hazard raises an alarm: give the site a profile with its limits, or add "
        "your national limits with their sources in a profile file; meanwhile have the readings checked by a person"
    ),
    RuleKind.INTEGRITY: (
        "Someone without the gateway's role published on its alarm or alert topics: check the broker's ACL "
        "and accounts; trust only the gateway's restored state and signed events"
    ),
    RuleKind.CAPACITY: (
        "Find the source of the unknown device ids (misconfigured logger or flood); add real sensors to the "
        "site's inventory or raise its channel limit"
    ),
}


def not_judged_message(hazard: str, site: str, profile: str) -> str:
    """ "CH4 readings from kop-1 are not judged: profile eu has no ch4 limit" """
    name = HAZARD_NAME.get(hazard, hazard)
    return f"{name} readings from {site} are not judged: profile {profile} has no {hazard} limit"
