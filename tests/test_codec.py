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
        (enc({"t": NOW, "hazard": "co", "value": "NaN", "unit": "ppm"}), "value: must be a JSON number"),
        (b'{"t": 1795340000, "hazard": "co", "value": 1e400, "unit": "ppm"}', "not valid UTF-8 JSON"),
        (enc({"t": NOW, "hazard": "co", "value": -5, "unit": "ppm"}), "physically impossible"),
        (enc({"t": NOW, "hazard": "o2", "value": 130, "unit": "%vol"}), "physically impossible"),
        (enc({"t": NOW, "hazard": "co", "value": "high", "unit": "ppm"}), 'value: must be a JSON number.*got "high"'),
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


# -- strict payloads (issue 9 point 3, issue 15 point 6): nothing changes meaning silently ---------
_CO = {"t": NOW, "hazard": "co", "unit": "ppm"}
_NOISE = {"hazard": "noise", "unit": "dBA"}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({**_CO, "value": True}, "value: must be a JSON number.*got true"),  # was stored as 1.0 ppm
        ({**_CO, "value": False}, "value: must be a JSON number.*got false"),
        ({**_CO, "value": "12.5"}, 'value: must be a JSON number.*got "12.5"'),
        ({**_CO, "value": None}, "value: must be a JSON number.*got null"),
        ({**_CO, "value": [1]}, "value: must be a JSON number"),
        ({**_CO, "value": 1, "seq": True}, "seq: must be a JSON integer.*got true"),  # was seq 1
        ({**_CO, "value": 1, "seq": "7"}, 'seq: must be a JSON integer.*got "7"'),
        ({**_CO, "value": 1, "seq": 7.5}, "seq: must be a JSON integer.*got 7.5"),
        ({**_CO, "value": 1, "seq": -1}, "seq: Input should be greater than or equal to 0"),
        ({**_CO, "value": 1, "seq": 2**63}, "seq: Input should be less than or equal to"),
        ({**_CO, "value": 1, "t": True}, "t: must be epoch seconds.*got true"),
        ({**_CO, "value": 1, "t": "1795340000"}, "not RFC 3339"),
        ({"t": False, "readings": [{"hazard": "co", "value": 1, "unit": "ppm"}]}, "t: must be epoch"),
        ({"t": NOW, "readings": [{"hazard": "co", "value": True, "unit": "ppm"}]}, "readings.0.value: must be a JSON"),
        ({**_NOISE, "t0": True, "dt": 1.0, "values": [80]}, "t0: must be epoch seconds.*got true"),
        ({**_NOISE, "t0": NOW, "dt": True, "values": [80]}, "dt: must be a JSON number.*got true"),
        ({**_NOISE, "t0": NOW, "dt": "1", "values": [80]}, 'dt: must be a JSON number.*got "1"'),
        ({**_NOISE, "t0": NOW, "dt": 1.0, "values": [80, True]}, "values.1: must be JSON numbers.*got true"),
        ({**_NOISE, "t0": NOW, "dt": 1.0, "values": [80, "81"]}, 'values.1: must be JSON numbers.*got "81"'),
        ({**_NOISE, "t": [NOW, True], "values": [80, 81]}, "t.1: must be epoch seconds.*got true"),
    ],
)
def test_non_numbers_in_numeric_fields_are_dead_lettered(obj: dict[str, object], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_readings(DATA, enc(obj), NOW - 1 if obj.get("t0") is not True else NOW)


def test_integers_are_numbers() -> None:
    d = decode_readings(DATA, enc({**_CO, "t": int(NOW), "value": 12, "seq": 0}), NOW)
    assert d.points[0][1:] == (NOW, 12.0) and d.seq == 0
    s = decode_readings(DATA, enc({**_NOISE, "t0": int(NOW) - 2, "dt": 1, "values": [80, 81]}), NOW)
    assert s.series[0].t_s.tolist() == [NOW - 2, NOW - 1]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"t": 1795340000, "hazard": "co", "value": 1, "value": 999, "unit": "ppm"}', "value"),  # stored 999
        (b'{"t": 1795340000, "hazard": "co", "hazard": "h2s", "value": 1, "unit": "ppm"}', "hazard"),  # h2s
        (b'{"t": "2026-11-22T09:33:20Z", "hazard": "co", "value": 1, "unit": "ppm", "unit": "ppb"}', "unit"),
        (b'{"t": 1795340000, "t": "2026-11-22T09:33:20Z", "hazard": "co", "value": 1, "unit": "ppm"}', "t"),
        (b'{"t":1795340000,"readings":[{"hazard":"co","value":1,"value":2,"unit":"ppm"}]}', "value"),
        (b'{"hazard":"noise","unit":"dBA","t0":1795339990,"dt":1,"dt":2,"values":[80,81]}', "dt"),
        (b'{"t": 1795340000, "hazard": "co", "value": 1, "unit": "ppm", "meta": {"a": 1, "a": 2}}', "a"),
        # colons hidden in escapes (`\u003a` is ':') leave only the exact check
        (b'{"t": "2026-11-22T09\\u003a33\\u003a20Z", "hazard": "co", "value": 1, "value": 2, "unit": "ppm"}', "value"),
        (b'{"t": 1795340000, "h\\u0061zard": "co", "hazard": "co", "value": 1, "unit": "ppm"}', "hazard"),
    ],
)
def test_duplicate_keys_are_dead_lettered(raw: bytes, key: str) -> None:
    with pytest.raises(PayloadError, match=f'key "{key}" appears twice'):
        decode_readings(DATA, raw, NOW)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"t": "2026-11-22T09:33:20Z", "hazard": "co", "value": 1, "unit": "ppm", "note": "a:b::c"}',
        b'{"t": "2026-11-22T09\\u003a33:20Z", "hazard": "co", "value": 1, "unit": "ppm"}',
        b'{"t":1795340000,"readings":[{"hazard":"co","value":1,"unit":"ppm"},{"hazard":"o2","value":20,"unit":"%vol"}]}',
        b'{"t": 1795340000, "hazard": "co", "value": 1, "unit": "ppm", "meta": {"a": {"a": 1}, "b": [{"a": 2}]}}',
    ],
)
def test_equal_keys_in_different_objects_and_colons_in_strings_are_fine(raw: bytes) -> None:
    assert decode_readings(DATA, raw, NOW).count >= 1


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({**_CO, "value": 1, "readings": [{"hazard": "h2s", "value": 1, "unit": "ppm"}]}, "mixes 'value' and 'read"),
        ({**_CO, "value": 1, "values": [1, 2], "t0": NOW - 5, "dt": 1}, "mixes 'value' and 'values'"),
        ({"t": NOW, "readings": [{"hazard": "co", "value": 1, "unit": "ppm"}], "values": [1]}, "mixes 'readings'"),
        ({**_CO, "value": 1, "t0": NOW}, "'t0'.*belong to a 'values' series"),
        ({**_CO, "value": 1, "dt": 1.0}, "'dt'.*belong to a 'values' series"),
        ({"t": NOW, "hazard": "co", "readings": [{"hazard": "h2s", "value": 1, "unit": "ppm"}]}, "'hazard' beside"),
    ],
)
def test_mixed_shapes_are_dead_lettered(obj: dict[str, object], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_readings(DATA, enc(obj), NOW)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({**_NOISE, "t0": NOW - 5, "dt": 1e-9, "values": [80, 81, 82]}, "dt=1e-09 s.*3 values would overwrite"),
        ({**_NOISE, "t0": NOW - 5, "dt": 0.0009, "values": [80, 81]}, "dt=0.0009 s"),
        ({**_NOISE, "t": [NOW - 2, NOW - 1, NOW - 2], "values": [80, 81, 82]}, "1 of 3 values share a millisecond"),
        ({**_NOISE, "t": [NOW - 1, NOW - 1 + 1e-4], "values": [80, 81]}, "share a millisecond"),
    ],
)
def test_series_with_equal_stored_time_stamps_are_dead_lettered(obj: dict[str, object], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_readings(DATA, enc(obj), NOW)


def test_series_at_one_millisecond_keeps_every_value() -> None:
    from storage.records import to_ms

    d = decode_readings(DATA, enc({**_NOISE, "t0": NOW - 5, "dt": 0.001, "values": [80.0] * 1000}), NOW)
    assert len({to_ms(t) for t in d.series[0].t_s.tolist()}) == 1000


@pytest.mark.parametrize("bad", [True, "10", None, [10]])
def test_status_interval_must_be_a_number(bad: object) -> None:
    if bad is None:
        assert decode_status(enc({"state": "online", "interval_s": bad})).interval_s is None
        return
    with pytest.raises(PayloadError, match="interval_s: must be a JSON number of seconds"):
        decode_status(enc({"state": "online", "interval_s": bad}))


@pytest.mark.parametrize("depth", [300, 1000])
def test_deeply_nested_extras_are_checked_without_crashing(depth: int) -> None:
    """orjson reads 1024 levels but writes only 254: the duplicate-key check must not raise TypeError."""
    nested = b"[" * depth + b"]" * depth
    raw = b'{"t": "2026-11-22T09:33:20Z", "hazard": "co", "value": 1, "unit": "ppm", "x": ' + nested + b"}"
    try:
        assert decode_readings(DATA, raw, NOW).count == 1
    except PayloadError as exc:
        assert "nests" in str(exc) or "JSON" in str(exc)


def test_status_and_ack_refuse_duplicate_keys_too() -> None:
    with pytest.raises(PayloadError, match='key "state" appears twice'):
        decode_status(b'{"state": "offline", "state": "online"}')
    with pytest.raises(PayloadError, match='key "by" appears twice'):
        decode_ack(b'{"alert_id": "a1", "by": "J. Petrovic", "by": "Chief Inspector"}')


_dup_key = st.sampled_from(["t", "hazard", "value", "unit", "seq", "worker", "x"])


@settings(max_examples=300, deadline=None)
@given(_fields, _dup_key, _json, st.booleans())
def test_any_duplicate_key_is_found(obj: dict[str, object], key: str, extra: object, compact: bool) -> None:
    """Whatever the payload, a repeated key is a dead letter naming it (orjson alone keeps the last)."""
    try:
        body = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        dup = orjson.dumps({key: extra}, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return
    sep = b"," if compact else b" , "
    raw = body[:-1] + (sep if obj else b"") + dup[1:-1] + b"," + dup[1:]
    with pytest.raises(PayloadError, match=f'key "{key}" appears twice'):
        decode_readings(DATA, raw, NOW)


_bad_number = st.booleans() | st.text(max_size=6) | st.none() | st.lists(st.integers(-9, 9), max_size=2)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["value", "seq", "t", "dt", "t0", "values"]), _bad_number)
def test_no_non_number_is_ever_accepted_as_a_number(field: str, bad: object) -> None:
    series = {**_NOISE, "t0": NOW - 5, "dt": 1.0, "values": [80, 81]}
    base: dict[str, object] = series if field in ("dt", "t0", "values") else {**_CO, "value": 1}
    obj = {**base, field: [80, bad] if field == "values" else bad}
    try:
        decode_readings(DATA, enc(obj), NOW)
    except PayloadError:
        return
    # RFC 3339 strings are times; `"seq": null` is the same as no seq
    assert (field == "t" and isinstance(bad, str)) or (field == "seq" and bad is None), f"{field}={bad!r} accepted"
