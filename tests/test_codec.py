"""Wire codec (SPEC §2): topics, the three payload shapes, units, event time, bad input."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codec import (
    MAX_PAYLOAD_BYTES,
    Topic,
    TopicKind,
    parse_time,
    parse_topic,
    to_canonical,
)
from gateway.payloads import decode_ack, decode_readings, decode_status
from rules.errors import PayloadError
from rules.types import Hazard

NOW = 1_795_340_000.0  # 2026-11-22T09:33:20Z
DATA = Topic(TopicKind.DATA, "kop-1", "north-adit", "gd-17")


def enc(obj: object) -> bytes:
    return orjson.dumps(obj)


# -- topics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topic", "kind", "site", "zone", "device"),
    [
        ("osh/kop-1/north-adit/gd-17/data", TopicKind.DATA, "kop-1", "north-adit", "gd-17"),
        ("osh/kop-1/face.2/nd_3/status", TopicKind.STATUS, "kop-1", "face.2", "nd_3"),
        ("osh/kop-1/ack", TopicKind.ACK, "kop-1", "", ""),
    ],
)
def test_parse_topic_accepts_the_contract_topics(
    topic: str, kind: TopicKind, site: str, zone: str, device: str
) -> None:
    assert parse_topic(topic, "osh") == Topic(kind, site, zone, device)


def test_parse_topic_with_multi_level_prefix() -> None:
    assert parse_topic("mine/osh/s/z/d/data", "mine/osh") == Topic(TopicKind.DATA, "s", "z", "d")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("other/kop-1/z/d/data", "prefix"),
        ("osh/kop-1/z/d/readings", "is not"),
        ("osh/kop-1/z/data", "is not"),
        ("osh/kop 1/z/d/data", "site"),
        ("osh/kop-1/" + "z" * 65 + "/d/data", "zone"),
        ("osh/kop-1/z/d$/data", "device"),
        ("osh/kop-1//d/data", "zone"),
    ],
)
def test_parse_topic_rejects_with_a_reason(topic: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_topic(topic, "osh")


# -- the three shapes -------------------------------------------------------------------------------
def test_shape_1_single_value() -> None:
    d = decode_readings(DATA, enc({"t": NOW - 10, "hazard": "co", "value": 12.5, "unit": "ppm", "seq": 7}), NOW)
    ((key, t, v),) = d.points
    assert key.hazard is Hazard.CO and key.device == "gd-17" and key.worker is None
    assert (t, v) == (NOW - 10, 12.5)
    assert d.seq == 7 and d.count == 1


def test_shape_2_multi_hazard_with_conversion_and_worker() -> None:
    payload = {
        "t": "2026-11-22T08:50:00+01:00",
        "worker": "w-104",
        "readings": [
            {"hazard": "ch4", "value": 4000, "unit": "ppm"},
            {"hazard": "co", "value": 3, "unit": "ppm"},
            {"hazard": "co2", "value": 0.5, "unit": "%vol"},
        ],
    }
    d = decode_readings(DATA, enc(payload), NOW)
    got = {key.hazard: v for key, _t, v in d.points}
    assert got == {Hazard.CH4: pytest.approx(0.4), Hazard.CO: 3.0, Hazard.CO2: pytest.approx(5000.0)}
    assert all(key.worker == "w-104" for key, _t, _v in d.points)
    assert d.points[0][1] == parse_time("2026-11-22T07:50:00Z")


def test_shape_3_series_with_t0_dt_and_with_t_list() -> None:
    a = decode_readings(
        DATA, enc({"hazard": "noise", "unit": "dBA", "t0": NOW - 30, "dt": 10.0, "values": [85, 86, 87]}), NOW
    )
    assert a.series[0].t_s.tolist() == [NOW - 30, NOW - 20, NOW - 10]
    assert a.series[0].value.tolist() == [85.0, 86.0, 87.0]
    b = decode_readings(
        DATA, enc({"hazard": "dpm", "unit": "ug/m3", "t": [NOW - 2, NOW - 1], "values": [150, 250]}), NOW
    )
    assert b.series[0].value.tolist() == pytest.approx([0.15, 0.25])


@pytest.mark.parametrize(
    ("hazard", "unit", "value", "canonical"),
    [
        ("ch4", "%vol", 1.2, 1.2),
        ("ch4", "ppm", 12000, 1.2),
        ("co", "ppb", 4000, 4.0),
        ("h2s", "ppb", 500, 0.5),
        ("no2", "ppb", 100, 0.1),
        ("no", "ppb", 2000, 2.0),
        ("so2", "ppb", 250, 0.25),
        ("co2", "%vol", 0.5, 5000.0),
        ("o2", "%vol", 20.9, 20.9),
        ("respirable_dust", "ug/m3", 1500, 1.5),
        ("silica", "ug/m3", 50, 0.05),
        ("dpm", "ug/m3", 160, 0.16),
        ("noise", "dBA", 90, 90.0),
        ("noise_peak", "dBC", 135, 135.0),
    ],
)
def test_unit_conversion_to_canonical(hazard: str, unit: str, value: float, canonical: float) -> None:
    out = to_canonical(Hazard(hazard), unit, np.array([value], np.float64))
    assert out[0] == pytest.approx(canonical, rel=1e-12)


# -- event time -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1795340000, 1795340000.0),
        (1795340000.25, 1795340000.25),
        ("2026-11-22T09:33:20Z", 1795340000.0),
        ("2026-11-22T10:33:20+01:00", 1795340000.0),
        ("2026-11-22T09:33:20.500Z", 1795340000.5),
    ],
)
def test_parse_time(raw: object, expected: float) -> None:
    assert parse_time(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2026-11-22", "2026-11-22T08:53:20", True, None, [1], float("nan")])
def test_parse_time_rejects(raw: object) -> None:
    with pytest.raises(PayloadError):
        parse_time(raw)


def test_time_window_old_and_future() -> None:
    ok = {"hazard": "co", "value": 1, "unit": "ppm"}
    decode_readings(DATA, enc({**ok, "t": NOW - 6.9 * 86400}), NOW)
    decode_readings(DATA, enc({**ok, "t": NOW + 299}), NOW)
    with pytest.raises(PayloadError, match="future"):
        decode_readings(DATA, enc({**ok, "t": NOW + 301}), NOW)
    with pytest.raises(PayloadError, match="days old"):
        decode_readings(DATA, enc({**ok, "t": NOW - 7.1 * 86400}), NOW)


# -- bad input: every case a clear PayloadError -----------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"[1,2,3]", "JSON object"),
        (b"\xff\xfe\x00", "not valid UTF-8 JSON"),
        (enc({"t": NOW, "hazard": "unobtainium", "value": 1, "unit": "ppm"}), "unknown hazard"),
        (enc({"t": NOW, "hazard": "co", "value": 1, "unit": "furlongs"}), "unit 'furlongs'"),
        (enc({"t": NOW, "hazard": "co", "value": "NaN", "unit": "ppm"}), "finite"),
        (enc({"t": NOW, "hazard": "co", "value": -5, "unit": "ppm"}), "physically impossible"),
        (enc({"t": NOW, "hazard": "o2", "value": 130, "unit": "%vol"}), "physically impossible"),
        (enc({"t": NOW, "hazard": "co", "value": "high", "unit": "ppm"}), "value"),
        (enc({"t": NOW, "hazard": "co", "unit": "ppm"}), "none of"),
        (enc({"hazard": "noise", "unit": "dBA", "values": [80]}), "t0"),
        (enc({"hazard": "noise", "unit": "dBA", "t": [NOW, NOW], "values": [80]}), "2 time stamps"),
        (enc({"hazard": "noise", "unit": "dBA", "t0": NOW, "dt": 0, "values": [80]}), "dt"),
        (enc({"t": NOW, "readings": []}), "readings"),
        (enc({"t": NOW, "readings": [{"hazard": "co", "value": 1, "unit": "ppm"}] * 2}), "twice"),
        (enc({"t": NOW, "hazard": "co", "value": 1, "unit": "ppm", "worker": "bad worker!"}), "worker"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "256 KiB"),
    ],
)
def test_bad_payloads_are_payload_errors_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_readings(DATA, payload, NOW)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_but_payload_error(raw: bytes) -> None:
    try:
        decode_readings(DATA, raw, NOW)
    except PayloadError as exc:
        assert str(exc)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "t": _json | st.floats(NOW - 1000, NOW),
        "hazard": st.sampled_from([h.value for h in Hazard]) | st.text(max_size=5),
        "value": _json,
        "unit": st.sampled_from(["ppm", "ppb", "%vol", "dBA", "mg/m3"]) | st.text(max_size=5),
        "values": st.lists(_json, max_size=5),
        "t0": _json,
        "dt": _json,
        "readings": st.lists(_json, max_size=3),
        "worker": _json,
        "seq": _json,
    },
)


@settings(max_examples=400, deadline=None)
@given(_fields)
def test_structured_garbage_never_raises_anything_but_payload_error(obj: dict[str, object]) -> None:
    try:
        d = decode_readings(DATA, orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), NOW)
    except PayloadError:
        return
    except TypeError:  # orjson cannot even encode it (e.g. big ints): not a wire message
        return
    for g in d.series:
        assert np.all(np.isfinite(g.value)) and np.all(np.isfinite(g.t_s))
    assert all(math.isfinite(t) and math.isfinite(v) for _k, t, v in d.points)


def test_status_and_ack_payloads() -> None:
    s = decode_status(enc({"state": "online", "hazards": ["co"], "interval_s": 10, "calibrated_on": "2026-11-01"}))
    assert s.state == "online" and s.interval_s == 10
    with pytest.raises(PayloadError, match="state"):
        decode_status(enc({"state": "sleepy"}))
    a = decode_ack(enc({"alert_id": "a1", "by": "J. Petrović", "note": "fan restarted"}))
    assert a.by == "J. Petrović"
    with pytest.raises(PayloadError, match="by"):
        decode_ack(enc({"alert_id": "a1"}))
    assert math.isfinite(parse_time(0))
