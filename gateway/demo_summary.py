"""What `oshmon demo` checks at the end: does what happened add up?

- every scripted incident that had time to develop raised its alert (over MQTT, live);
- no sensor-health (`malfunction`) alert for a device the scenario did not silence;
- readings stored (counted in the store) = readings published by the simulated sensors;
- no dead letters.

A demo that does not add up says which check failed and exits 1: a first run that looks fine but
hides a lost reading or a missed alarm would teach the wrong thing. The gateway reporting itself
behind (gateway/intake.py: the machine was too busy) is shown as a note, not a failure: that
alert is the system working as it should on an overloaded machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulators import BlastingFumes, Incident, MethaneRise, NoisyShift, OxygenDip, SilentSensor, SimMessage

_MIN = 60.0
#: Mine time from an incident's start until its alert is due, with margin (simulators/incidents.py
#: shapes): methane passes 1.0 %vol after ~8 min; the blasting CO peak is at 2 min and the 15-min
#: average passes 100 ppm well before 15 min; oxygen passes 19.5 %vol after ~4 min; the Last Will
#: of a silent sensor comes after 45 s; a noisy shift's projected LEX,8h warning within ~20 min.
ALERT_DUE_S: dict[type, float] = {
    MethaneRise: 15 * _MIN,
    BlastingFumes: 20 * _MIN,
    OxygenDip: 10 * _MIN,
    SilentSensor: 3 * _MIN,
    NoisyShift: 40 * _MIN,
}
HAZARDS: dict[type, frozenset[str]] = {
    MethaneRise: frozenset({"ch4"}),
    BlastingFumes: frozenset({"co", "no2", "no"}),
    OxygenDip: frozenset({"o2"}),
    NoisyShift: frozenset({"noise", "noise_peak"}),
}
SENSOR_HEALTH_RULES = frozenset({"offline", "gap", "stuck", "out_of_range", "calibration_due"})


@dataclass(frozen=True, slots=True)
class Expectation:
    """An alert a scripted incident must raise: in `site`, in `zone` or on `device`."""

    label: str
    site: str
    zone: str | None
    device: str | None
    hazards: frozenset[str]

    def met_by(self, ev: dict[str, Any]) -> bool:
        if ev.get("event") != "raised" or ev.get("site") != self.site:
            return False
        if self.device is not None:
            return ev.get("device") == self.device and ev.get("severity") == "malfunction"
        return ev.get("zone") == self.zone and ev.get("hazard") in self.hazards


def expectations(incidents: Sequence[Incident], duration_s: float) -> list[Expectation]:
    """The alerts that resolved `incidents` must have raised within a run of `duration_s`."""
    out = []
    for inc in incidents:
        due = ALERT_DUE_S.get(type(inc))
        if due is None or inc.at_s + due > duration_s:
            continue
        site = str(getattr(inc, "site", ""))
        if isinstance(inc, SilentSensor):
            out.append(Expectation(f"{inc.label} {inc.where()}", site, None, inc.device, frozenset()))
        else:
            zone = getattr(inc, "zone", None)
            out.append(Expectation(f"{inc.label} {inc.where()}", site, zone, None, HAZARDS[type(inc)]))
    return out


def silenced(incidents: Sequence[Incident]) -> set[tuple[str, str]]:
    return {(str(i.site), str(i.device)) for i in incidents if isinstance(i, SilentSensor)}


def readings_in(m: SimMessage) -> int:
    """Readings a simulated message carries (SPEC §2.1 shapes); status messages carry none."""
    if not m.topic.endswith("/data"):
        return 0
    obj = orjson.loads(m.payload)
    if "readings" in obj:
        return len(obj["readings"])
    if "values" in obj:
        return len(obj["values"])
    return 1


@dataclass
class LiveRecord:
    """What the live part saw: counted at the sensors, at the board (MQTT) and in the store."""

    broker: str = ""
    published: int = 0
    readings_published: int = 0
    readings_stored: int = 0
    gateway_messages: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0

    def raised(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "raised"]

    def by_severity(self) -> Counter[str]:
        return Counter(str(e.get("severity")) for e in self.raised())


@dataclass(frozen=True, slots=True)
class Verdict:
    expected: list[str]
    missed: list[str]
    spurious: list[str]
    problems: list[str]
    gateway_behind: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected": self.expected,
            "missed": self.missed,
            "spurious_malfunctions": self.spurious,
            "gateway_behind": self.gateway_behind,
            "problems": self.problems,
        }


def check(live: LiveRecord, expected: Sequence[Expectation], quiet_ok: set[tuple[str, str]]) -> Verdict:
    raised = live.raised()
    missed = [x.label for x in expected if not any(x.met_by(e) for e in raised)]
    spurious = [
        f"{e.get('site')}/{e.get('zone')}/{e.get('device')} {e.get('rule')}: {e.get('message')}"
        for e in raised
        if e.get("severity") == "malfunction"
        and e.get("rule") in SENSOR_HEALTH_RULES
        and e.get("hazard") != "gateway"
        and (e.get("site"), e.get("device")) not in quiet_ok
    ]
    behind = [str(e.get("message")) for e in raised if e.get("hazard") == "gateway"]
    problems = [f"no alert for: {m}" for m in missed] + [f"unexpected malfunction: {s}" for s in spurious]
    if live.readings_stored != live.readings_published:
        problems.append(f"readings stored {live.readings_stored:,} != published {live.readings_published:,}")
    if live.dead_letters:
        problems.append(f"{live.dead_letters} dead letter(s)")
    return Verdict([x.label for x in expected], missed, spurious, problems, behind)


def write_summary(path: Path, live: LiveRecord, verdict: Verdict, extra: dict[str, Any]) -> None:
    """`summary.json` beside the demo's data: the numbers the regression test checks."""
    doc = {
        "broker": live.broker,
        "messages_published": live.published,
        "messages_received_by_gateway": live.gateway_messages,
        "readings_published": live.readings_published,
        "readings_stored": live.readings_stored,
        "alerts_raised": dict(live.by_severity()),
        "alert_events": len(live.events),
        "dead_letters": live.dead_letters,
        "check": verdict.to_json(),
        **extra,
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
