"""Simulated mine sensors and scripted incidents: pure generators of MQTT messages (SPEC §2).

No network and no clock: `simulate()` turns a layout, a scenario, a start time and a seed into
`SimMessage`s in event-time order; `paced()` / `apaced()` spread them over wall-clock time for a
publisher. See docs/simulators.md.
"""

from simulators.engine import DEFAULT_PREFIX, simulate
from simulators.incidents import BlastingFumes, Incident, MethaneRise, NoisyShift, OxygenDip, SilentSensor
from simulators.layout import DEFAULT_ZONES, Device, DeviceKind, MineSpec, ZoneRole, zone_role
from simulators.messages import SimMessage
from simulators.pacing import AsyncClock, Clock, apaced, live_start, paced
from simulators.scenarios import SCENARIO_NAMES, Scenario, scenario

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_ZONES",
    "SCENARIO_NAMES",
    "AsyncClock",
    "BlastingFumes",
    "Clock",
    "Device",
    "DeviceKind",
    "Incident",
    "MethaneRise",
    "MineSpec",
    "NoisyShift",
    "OxygenDip",
    "Scenario",
    "SilentSensor",
    "SimMessage",
    "ZoneRole",
    "apaced",
    "live_start",
    "paced",
    "scenario",
    "simulate",
    "zone_role",
]
