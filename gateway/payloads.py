"""Reading, status and ack payloads (SPEC §2, §2.1), validated with pydantic at the edge.

`decode_readings` turns one MQTT data message into `DecodedReadings`: per-channel arrays in
canonical units. It never raises anything but `PayloadError`, whatever the bytes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from alerts.types import rfc3339
from gateway.codec import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_FUTURE_S,
    MAX_SERIES_VALUES,
    Topic,
    canonical_value,
    check_span,
    check_window,
    hazard_of,
    parse_time,
    to_canonical,
)
from gateway.wirejson import load_json_object, validation_reason
from rules.errors import PayloadError
from rules.types import F64, ChannelKey

_ID = r"^[A-Za-z0-9_.:@-]{1,64}$"
#: Numbers on the wire are JSON numbers: no booleans (`true` is not 1 ppm), no numeric strings.
Number = StrictFloat
Time = StrictFloat | StrictStr  # epoch seconds or RFC 3339 (parse_time checks the string)
#: `seq` is a per-device counter stored in an int64 column (-1 there means "none sent").
Seq = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
#: Every store keeps whole milliseconds (storage/records.py `to_ms`): a series whose time stamps
#: fall into one millisecond would overwrite its own values.
STORE_TIME_QUANTUM_S = 0.001
#: Keys that decide the shape (SPEC §2.1); a message may use the keys of one shape only.
SHAPE_KEYS = ("value", "readings", "values")
#: A step this much above the quantum keeps t0 + i*dt apart after rounding, float error included.
_SURELY_DISTINCT_DT_S = 1.1 * STORE_TIME_QUANTUM_S


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _One(_Strict):
    hazard: str
    value: Number = Field(allow_inf_nan=True)
    unit: str


class SingleReading(_One):
    t: Time
    worker: str | None = Field(default=None, pattern=_ID)
    seq: Seq | None = None


class MultiReading(_Strict):
    t: Time
    readings: list[_One] = Field(min_length=1, max_length=64)
    worker: str | None = Field(default=None, pattern=_ID)
    seq: Seq | None = None


class SeriesReading(_Strict):
    hazard: str
    unit: str
    values: list[Number] = Field(min_length=1, max_length=MAX_SERIES_VALUES)
    t0: Time | None = None
    dt: Number | None = Field(default=None, gt=0)
    t: list[Time] | None = None
    worker: str | None = Field(default=None, pattern=_ID)
    seq: Seq | None = None


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


#: Keys of other shapes that must not appear beside each shape's own key (SPEC §2.1).
_NOT_WITH_READINGS = frozenset({"value", "values", "t0", "dt", "hazard", "unit"})
_NOT_WITH_VALUES = frozenset({"value"})
_NOT_WITH_VALUE = frozenset({"t0", "dt"})


def _mixed_shape(obj: dict[str, Any]) -> PayloadError:
    """Keys of two shapes would make the gateway drop one part silently: name them."""
    shapes = [k for k in SHAPE_KEYS if k in obj]
    if len(shapes) > 1:
        return PayloadError(
            f"payload mixes {' and '.join(repr(k) for k in shapes)}: send one shape per message "
            "(SPEC §2.1: 'value', or 'readings', or 'values')"
        )
    if "readings" in obj:
        extra = [k for k in ("hazard", "unit", "t0", "dt") if k in obj]
        return PayloadError(f"payload has {', '.join(map(repr, extra))} beside 'readings': each reading names its own")
    extra = [k for k in ("t0", "dt") if k in obj]
    return PayloadError(f"payload has {', '.join(map(repr, extra))}, which belong to a 'values' series")


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
            if not _NOT_WITH_READINGS.isdisjoint(obj):
                raise _mixed_shape(obj)
            decoded = fast_multi(topic, obj) or _decode_multi(topic, MultiReading.model_validate(obj))
        elif "values" in obj:
            if not _NOT_WITH_VALUES.isdisjoint(obj):
                raise _mixed_shape(obj)
            decoded = _decode_series(topic, SeriesReading.model_validate(obj))
        elif "value" in obj:
            if not _NOT_WITH_VALUE.isdisjoint(obj):
                raise _mixed_shape(obj)
            decoded = fast_single(topic, obj) or _decode_single(topic, SingleReading.model_validate(obj))
        else:
            raise PayloadError(
                "payload has none of 'value', 'readings' or 'values': see SPEC §2.1 for the three shapes"
            )
    except ValidationError as exc:
        raise PayloadError(validation_reason(exc)) from None
    for g in decoded.series:
        check_window(g.t_s, now_s, max_age_s, max_future_s)
    if decoded.points:
        t = decoded.points[0][1]  # one instant per message
        check_span(t, t, now_s, max_age_s, max_future_s)
    return decoded


@functools.lru_cache(maxsize=65536)  # a frozen dataclass per reading was a visible cost (issue 12)
def _key(topic: Topic, hazard: str, worker: str | None) -> ChannelKey:
    return ChannelKey(topic.site, topic.zone, topic.device, hazard_of(hazard), worker)


def _decode_single(topic: Topic, m: SingleReading) -> DecodedReadings:
    return _single(topic, m.hazard, m.value, m.unit, m.t, m.worker, m.seq)


def _single(
    topic: Topic, hazard: str, value: float, unit: str, t: float | str, worker: str | None, seq: int | None
) -> DecodedReadings:
    key = _key(topic, hazard, worker)
    point = (key, parse_time(t), canonical_value(key.hazard, unit, value))
    return DecodedReadings([point], [], seq)


def _decode_multi(topic: Topic, m: MultiReading) -> DecodedReadings:
    return _multi(topic, m.t, [(r.hazard, r.value, r.unit) for r in m.readings], m.worker, m.seq)


def _multi(
    topic: Topic, t_raw: float | str, readings: list[tuple[str, float, str]], worker: str | None, seq: int | None
) -> DecodedReadings:
    t = parse_time(t_raw)
    points: list[tuple[ChannelKey, float, float]] = []
    seen: set[str] = set()
    for hazard, value, unit in readings:
        if hazard in seen:
            raise PayloadError(f"readings: hazard {hazard!r} appears twice at one instant")
        seen.add(hazard)
        key = _key(topic, hazard, worker)
        points.append((key, t, canonical_value(key.hazard, unit, value)))
    return DecodedReadings(points, [], seq)


# -- fast exact path for the common shapes (issue 12) ----------------------------------------------
# One reading per message is the common case, and a pydantic model per message was a large part of
# the gateway's cost. These functions accept exactly what the models accept *for sure* (known keys,
# exact JSON types, ids and seq in range) and decode it the same way; anything else, including
# every error, returns None and takes the pydantic path, so accepted values and error texts are
# the models' own (tests/test_payload_fastpath.py compares both paths).
_SINGLE_KEYS = frozenset({"t", "hazard", "value", "unit", "worker", "seq"})
_MULTI_KEYS = frozenset({"t", "readings", "worker", "seq"})
_ONE_KEYS = frozenset({"hazard", "value", "unit"})
_ID_BODY = re.compile(_ID[1:-1])  # fullmatch: Python's `$` would also accept a trailing newline
_SEQ_MAX = 2**63 - 1


def _number(x: object) -> bool:
    return type(x) is float or type(x) is int  # not bool (a subclass of int)


def _surely_ok_common(obj: dict[str, Any], keys: frozenset[str]) -> bool:
    if not keys.issuperset(obj):
        return False
    t = obj.get("t")
    if not (_number(t) or type(t) is str):
        return False
    worker = obj.get("worker")
    if worker is not None and not (type(worker) is str and _ID_BODY.fullmatch(worker)):
        return False
    seq = obj.get("seq")
    return seq is None or (type(seq) is int and 0 <= seq <= _SEQ_MAX)


def _float(x: float) -> float:
    return float(x)  # pydantic's StrictFloat hands ints over as floats


def _time(t: float | str) -> float | str:
    return t if type(t) is str else float(t)


def fast_single(topic: Topic, obj: dict[str, Any]) -> DecodedReadings | None:
    """Shape 1 without a model object, or None when in any doubt (then pydantic decides)."""
    hazard, value, unit = obj.get("hazard"), obj.get("value", ""), obj.get("unit")
    if not (type(hazard) is str and type(unit) is str and _number(value) and _surely_ok_common(obj, _SINGLE_KEYS)):
        return None
    return _single(topic, hazard, _float(value), unit, _time(obj["t"]), obj.get("worker"), obj.get("seq"))


def fast_multi(topic: Topic, obj: dict[str, Any]) -> DecodedReadings | None:
    """Shape 2 (several hazards at one instant) without model objects, or None when in any doubt."""
    rows = obj.get("readings")
    if type(rows) is not list or not 1 <= len(rows) <= 64 or not _surely_ok_common(obj, _MULTI_KEYS):
        return None
    readings: list[tuple[str, float, str]] = []
    for r in rows:
        if type(r) is not dict or r.keys() != _ONE_KEYS:
            return None
        hazard, value, unit = r["hazard"], r["value"], r["unit"]
        if not (type(hazard) is str and type(unit) is str and _number(value)):
            return None
        readings.append((hazard, _float(value), unit))
    return _multi(topic, _time(obj["t"]), readings, obj.get("worker"), obj.get("seq"))


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
    _check_distinct_times(t_s, m.dt)
    values = to_canonical(key.hazard, m.unit, np.asarray(m.values, np.float64))
    return DecodedReadings([], [ChannelReadings(key, t_s, values)], m.seq)


def _check_distinct_times(t_s: F64, dt: float | None) -> None:
    """No two values of one series may land on the same stored millisecond (one would be lost)."""
    if t_s.size < 2 or (dt is not None and dt >= _SURELY_DISTINCT_DT_S):
        return
    if dt is not None and dt < STORE_TIME_QUANTUM_S:
        raise PayloadError(
            f"series: dt={dt:g} s puts values less than 1 ms apart, but the store keeps whole "
            f"milliseconds, so {t_s.size} values would overwrite each other: use dt >= 0.001 s"
        )
    ms = np.round(t_s * (1.0 / STORE_TIME_QUANTUM_S))  # as storage/records.py `to_ms`
    if (ms[1:] > ms[:-1]).all():  # ascending and distinct: the usual case, no sort needed
        return
    ms.sort()
    same = np.flatnonzero(ms[1:] == ms[:-1])
    if same.size:
        raise PayloadError(
            f"series: {same.size} of {t_s.size} values share a millisecond with another (first at "
            f"{rfc3339(ms[same[0]] * STORE_TIME_QUANTUM_S)}); the store keeps whole milliseconds, "
            "so they would overwrite each other: give each value its own time"
        )


class StatusPayload(_Strict):
    state: str = Field(pattern=r"^(online|offline)$")
    hazards: list[str] | None = None
    interval_s: Number | None = Field(default=None, gt=0)  # `true` is not 1 s
    calibrated_on: str | None = None


class AckPayload(_Strict):
    """SPEC §2 ack plus `t` (when the officer acknowledged) and `ack_id` (docs/spec-changes.md).
    `by` and `note` are cleaned and length-checked in one place: `alerts.acks.clean_ack`."""

    alert_id: str = Field(min_length=1, max_length=128)
    by: str
    note: str | None = None
    t: Any = None  # epoch seconds or RFC 3339, like a reading's `t`
    ack_id: str | None = Field(default=None, min_length=1, max_length=64)

    def at_s(self) -> float | None:
        return None if self.t is None else parse_time(self.t)


def decode_status(payload: bytes) -> StatusPayload:
    try:
        return StatusPayload.model_validate(load_json_object(payload))
    except ValidationError as exc:
        raise PayloadError(f"status: {validation_reason(exc)}") from None


def decode_ack(payload: bytes) -> AckPayload:
    try:
        ack = AckPayload.model_validate(load_json_object(payload))
    except ValidationError as exc:
        raise PayloadError(f"ack: {validation_reason(exc)}") from None
    try:
        ack.at_s()
    except PayloadError as exc:
        raise PayloadError(f"ack: t: {exc}") from None
    return ack
