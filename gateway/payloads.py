"""Reading, status and ack payloads (SPEC §2, §2.1), validated with pydantic at the edge.

`decode_readings` turns one MQTT data message into `DecodedReadings`: per-channel arrays in
canonical units. It never raises anything but `PayloadError`, whatever the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.codec import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_FUTURE_S,
    MAX_PAYLOAD_BYTES,
    MAX_SERIES_VALUES,
    Topic,
    canonical_value,
    check_span,
    check_window,
    hazard_of,
    parse_time,
    to_canonical,
)
from rules.errors import PayloadError
from rules.types import F64, ChannelKey

_ID = r"^[A-Za-z0-9_.:@-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _One(_Strict):
    hazard: str
    value: float = Field(allow_inf_nan=True)
    unit: str


class SingleReading(_One):
    t: float | str
    worker: str | None = Field(default=None, pattern=_ID)
    seq: int | None = None


class MultiReading(_Strict):
    t: float | str
    readings: list[_One] = Field(min_length=1, max_length=64)
    worker: str | None = Field(default=None, pattern=_ID)
    seq: int | None = None


class SeriesReading(_Strict):
    hazard: str
    unit: str
    values: list[float] = Field(min_length=1, max_length=MAX_SERIES_VALUES)
    t0: float | str | None = None
    dt: float | None = Field(default=None, gt=0)
    t: list[float | str] | None = None
    worker: str | None = Field(default=None, pattern=_ID)
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelReadings:
    key: ChannelKey
    t_s: F64
    value: F64


@dataclass(frozen=True, slots=True)
class DecodedReadings:
    """One message's readings: single instants as (key, t_s, value) and series as arrays."""

    points: list[tuple[ChannelKey, float, float]]
    series: list[ChannelReadings]
    seq: int | None

    @property
    def count(self) -> int:
        return len(self.points) + sum(int(g.t_s.size) for g in self.series)


def load_json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES} (256 KiB)")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(obj).__name__}")
    return obj


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"


def decode_readings(
    topic: Topic,
    payload: bytes,
    now_s: float,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
) -> DecodedReadings:
    """One data message → readings in canonical units, or PayloadError naming what to fix."""
    obj = load_json_object(payload)
    try:
        if "readings" in obj:
            decoded = _decode_multi(topic, MultiReading.model_validate(obj))
        elif "values" in obj:
            decoded = _decode_series(topic, SeriesReading.model_validate(obj))
        elif "value" in obj:
            decoded = _decode_single(topic, SingleReading.model_validate(obj))
        else:
            raise PayloadError(
                "payload has none of 'value', 'readings' or 'values': see SPEC §2.1 for the three shapes"
            )
    except ValidationError as exc:
        raise PayloadError(_validation_reason(exc)) from None
    for g in decoded.series:
        check_window(g.t_s, now_s, max_age_s, max_future_s)
    if decoded.points:
        t = decoded.points[0][1]  # one instant per message
        check_span(t, t, now_s, max_age_s, max_future_s)
    return decoded


def _key(topic: Topic, hazard: str, worker: str | None) -> ChannelKey:
    return ChannelKey(topic.site, topic.zone, topic.device, hazard_of(hazard), worker)


def _decode_single(topic: Topic, m: SingleReading) -> DecodedReadings:
    key = _key(topic, m.hazard, m.worker)
    point = (key, parse_time(m.t), canonical_value(key.hazard, m.unit, m.value))
    return DecodedReadings([point], [], m.seq)


def _decode_multi(topic: Topic, m: MultiReading) -> DecodedReadings:
    t = parse_time(m.t)
    points: list[tuple[ChannelKey, float, float]] = []
    seen: set[str] = set()
    for r in m.readings:
        if r.hazard in seen:
            raise PayloadError(f"readings: hazard {r.hazard!r} appears twice at one instant")
        seen.add(r.hazard)
        key = _key(topic, r.hazard, m.worker)
        points.append((key, t, canonical_value(key.hazard, r.unit, r.value)))
    return DecodedReadings(points, [], m.seq)


def _decode_series(topic: Topic, m: SeriesReading) -> DecodedReadings:
    key = _key(topic, m.hazard, m.worker)
    n = len(m.values)
    if m.t is not None:
        if m.t0 is not None or m.dt is not None:
            raise PayloadError("series: give either 't' (a list of times) or 't0' and 'dt', not both")
        if len(m.t) != n:
            raise PayloadError(f"series: 't' has {len(m.t)} time stamps for {n} values")
        t_s = np.array([parse_time(x) for x in m.t], np.float64)
    elif m.t0 is not None and m.dt is not None:
        t_s = parse_time(m.t0) + m.dt * np.arange(n, dtype=np.float64)
    else:
        raise PayloadError("series: needs 't0' and 'dt' (seconds), or 't' with one time per value")
    values = to_canonical(key.hazard, m.unit, np.asarray(m.values, np.float64))
    return DecodedReadings([], [ChannelReadings(key, t_s, values)], m.seq)


class StatusPayload(_Strict):
    state: str = Field(pattern=r"^(online|offline)$")
    hazards: list[str] | None = None
    interval_s: float | None = Field(default=None, gt=0)
    calibrated_on: str | None = None


class AckPayload(_Strict):
    alert_id: str = Field(min_length=1, max_length=128)
    by: str = Field(min_length=1, max_length=128)
    note: str | None = Field(default=None, max_length=4096)


def decode_status(payload: bytes) -> StatusPayload:
    try:
        return StatusPayload.model_validate(load_json_object(payload))
    except ValidationError as exc:
        raise PayloadError(f"status: {_validation_reason(exc)}") from None


def decode_ack(payload: bytes) -> AckPayload:
    try:
        return AckPayload.model_validate(load_json_object(payload))
    except ValidationError as exc:
        raise PayloadError(f"ack: {_validation_reason(exc)}") from None
