"""The serious events of a site's month, for the first pages: every critical alert and every
escalated alert one by one, and the shifts that reached a limit, counted by hazard and zone.

Figures come from the stored alert log as it is (`alert_stats.lifecycles`): an escalation is an
`escalated` event, a time to acknowledge is the first `acknowledged` event minus `since`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.alert_stats import AlertLife
from rules.types import Severity

#: Severities listed one by one whether or not they escalated.
LISTED_SEVERITIES = frozenset({Severity.CRITICAL.value})


def is_serious(a: AlertLife) -> bool:
    return a.severity in LISTED_SEVERITIES or a.escalations > 0


def serious_alerts(lives: Sequence[AlertLife]) -> list[dict[str, Any]]:
    """Critical and escalated alerts, oldest first, with how long they lasted (None: still open)."""
    out = []
    for a in sorted((a for a in lives if is_serious(a)), key=lambda a: (a.since_s, a.alert_id)):
        d = a.as_dict()
        d["duration_s"] = None if a.cleared_s is None else max(0.0, a.cleared_s - a.since_s)
        out.append(d)
    return out


def exceedances(hazards: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Valid shifts at or above the 15-minute limit (STEL) and the shift limit, per hazard and zone.

    Only hazards and zones with at least one such shift; the counts are those of the zone tables.
    """
    out = []
    for hz in hazards:
        zones = [
            {"zone": z["zone"], "stel": z["above_stel"] or 0, "shift_limit": z["above_limit"] or 0}
            for z in hz["zones"]
            if (z["above_stel"] or 0) + (z["above_limit"] or 0)
        ]
        if zones:
            out.append({
                "hazard": hz["hazard"], "metric": hz["metric"], "zones": zones,
                "stel": sum(z["stel"] for z in zones), "shift_limit": sum(z["shift_limit"] for z in zones),
            })  # fmt: skip
    return out
