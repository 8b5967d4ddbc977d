"""Simulated MQTT messages and the JSON payloads of SPEC §2 / §2.1, encoded with orjson.

Builders take plain Python lists (call `.tolist()` on numpy arrays first: formatting numpy
scalars one by one is several times slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

QOS_DATA = 1  # SPEC §2: data at QoS 1
QOS_STATUS = 1  # SPEC §2: status at QoS 1, retained


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message to publish: `t_s` is its event time (epoch seconds), when it is due."""

    topic: str
    payload: bytes
    t_s: float
    qos: int = QOS_DATA
    retain: bool = False


Time = float | str


def rfc3339(t_s: float) -> str:
    """Epoch seconds → `2026-11-22T09:41:07.250Z` (RFC 3339, UTC, milliseconds)."""
    text = datetime.fromtimestamp(t_s, UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def _with_tags(obj: dict[str, Any], seq: int, worker: str | None) -> bytes:
    obj["seq"] = seq
    if worker is not None:
        obj["worker"] = worker
    return orjson.dumps(obj)


def single_payloads(
    times: list[Time], hazard: str, unit: str, values: list[float], seqs: list[int], worker: str | None
) -> list[bytes]:
    """Shape 1: `{"t", "hazard", "value", "unit"}` per reading."""
    return [
        _with_tags({"t": t, "hazard": hazard, "value": v, "unit": unit}, s, worker)
        for t, v, s in zip(times, values, seqs, strict=True)
    ]


def multi_payloads(
    times: list[Time],
    channels: list[tuple[str, str]],
    columns: list[list[float]],
    seqs: list[int],
    worker: str | None,
) -> list[bytes]:
    """Shape 2: `{"t", "readings": [{"hazard", "value", "unit"}, ...]}`; one column per channel."""
    out = []
    for i, (t, s) in enumerate(zip(times, seqs, strict=True)):
        readings = [{"hazard": h, "value": col[i], "unit": u} for (h, u), col in zip(channels, columns, strict=True)]
        out.append(_with_tags({"t": t, "readings": readings}, s, worker))
    return out


def series_payload(
    hazard: str, unit: str, t0: float, dt: float, values: list[float], seq: int, worker: str | None
) -> bytes:
    """Shape 3: `{"hazard", "unit", "t0", "dt", "values"}`."""
    return _with_tags({"hazard": hazard, "unit": unit, "t0": t0, "dt": dt, "values": values}, seq, worker)


def series_t_payload(
    hazard: str, unit: str, times: list[float], values: list[float], seq: int, worker: str | None
) -> bytes:
    """Shape 3 with one time stamp per value: `{"hazard", "unit", "t": [...], "values"}`."""
    return _with_tags({"hazard": hazard, "unit": unit, "t": times, "values": values}, seq, worker)


def status_payload(state: str, metadata: dict[str, Any] | None = None) -> bytes:
    """`{"state": "online"|"offline", ...metadata}` for `P/{site}/{zone}/{device}/status`."""
    return orjson.dumps({"state": state, **(metadata or {})})
