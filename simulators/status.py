"""Retained device status messages (`P/{site}/{zone}/{device}/status`, SPEC §2).

- At the start every device says `{"state": "online", "hazards", "interval_s", "calibrated_on",
  "kind", ...}`.
- Devices are recalibrated on a monthly round (every 28 days, each on its own day), so none
  runs past a 31-day calibration interval; each calibration re-publishes the online status with
  the new `calibrated_on`.
- A silent sensor's status goes `{"state": "offline"}` (its Last Will) and back online with the
  latest calibration date when it returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from simulators.emitters import Emitter
from simulators.incidents import Incident, SilentSensor
from simulators.messages import QOS_STATUS, SimMessage, status_payload

DAY_S = 86400.0
CALIBRATION_EVERY_S = 28 * DAY_S  # a monthly calibration round
_LAST_CALIBRATED_DAYS = (1.0, 27.0)  # the last calibration before the start was this long ago


def status_messages(
    emitters: Sequence[Emitter],
    incidents: Sequence[Incident],
    start_s: float,
    end_s: float,
    seed: int,
    prefix: str,
) -> list[SimMessage]:
    """Every status message of the run, sorted by event time."""
    out: list[SimMessage] = []
    for em in emitters:
        calibrations = _calibrations(em, start_s, end_s, seed)
        out.append(_online(em, calibrations, start_s, prefix))
        for t in calibrations[1:]:
            if t >= start_s and not any(a <= t < b for a, b in em.silent):
                out.append(_online(em, calibrations, t, prefix))
        out.extend(_silent_spells(em, incidents, calibrations, start_s, prefix))
    in_run = (m for m in out if m.t_s == start_s or start_s <= m.t_s < end_s)
    return sorted(in_run, key=lambda m: m.t_s)


def _calibrations(em: Emitter, start_s: float, end_s: float, seed: int) -> list[float]:
    """Calibration times: the last one before `start_s`, then every 28 days up to `end_s`."""
    rng = np.random.default_rng([seed, em.device.index, 0xCA1])
    first = start_s - float(rng.uniform(*_LAST_CALIBRATED_DAYS)) * DAY_S
    n = math.floor((end_s - first) / CALIBRATION_EVERY_S)
    return [first + k * CALIBRATION_EVERY_S for k in range(n + 1)]


def _silent_spells(
    em: Emitter, incidents: Sequence[Incident], calibrations: list[float], start_s: float, prefix: str
) -> list[SimMessage]:
    out = []
    for inc in incidents:
        if not (isinstance(inc, SilentSensor) and inc.touches(em.device)):
            continue
        off = inc.offline_at_s()
        if off is not None:
            out.append(_retained(em, status_payload("offline"), start_s + off, prefix))
        if inc.duration_s is not None:
            out.append(_online(em, calibrations, start_s + inc.at_s + inc.duration_s, prefix))
    return out


def _online(em: Emitter, calibrations: list[float], t_s: float, prefix: str) -> SimMessage:
    last = max(c for c in calibrations if c <= t_s)
    meta: dict[str, object] = {
        "hazards": list(em.device.hazards),
        "interval_s": em.period_s,
        "calibrated_on": datetime.fromtimestamp(last, UTC).date().isoformat(),
        "kind": em.device.spec.description,
    }
    if em.sample_s != em.period_s:
        meta["sample_s"] = em.sample_s
    if em.device.worker is not None:
        meta["worker"] = em.device.worker
    return _retained(em, status_payload("online", meta), t_s, prefix)


def _retained(em: Emitter, payload: bytes, t_s: float, prefix: str) -> SimMessage:
    return SimMessage(em.device.topic(prefix, "status"), payload, t_s, QOS_STATUS, retain=True)
