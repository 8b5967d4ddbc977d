"""The fast decode path (issue 12) is exact: whatever it decodes, the pydantic models decode the
same way; whatever the models reject, it leaves to them (so every error text stays theirs)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway import payloads
from gateway.codec import Topic, TopicKind
from gateway.payloads import MultiReading, SingleReading, decode_readings, fast_multi, fast_single
from rules.errors import PayloadError

TOPIC = Topic(TopicKind.DATA, "kop-1", "z", "d1")
NOW = 1_795_340_000.0
STAMP = "2025-11-22T09:41:07Z"

# Inputs near every edge the models check: types (bool, numeric strings), ids, seq range, units, extras.
ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["co", "ch4", "ppm", "%vol", "ppb", "w-7", "w 7", "w7\n", "", "12.5", STAMP]),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a"]), st.integers(), max_size=1),
)
FIELDS = ["t", "hazard", "value", "unit", "worker", "seq", "extra"]


def _one() -> st.SearchStrategy[dict[str, Any]]:
    base = st.fixed_dictionaries(
        {"hazard": st.sampled_from(["co", "ch4", "o2", "h2s", "smoke"]),
         "value": st.floats(-1, 200) | st.integers(-5, 99), "unit": st.sampled_from(["ppm", "%vol", "ppb", "mg/m3"])},
    )  # fmt: skip
    return base | st.dictionaries(st.sampled_from(["hazard", "value", "unit", "note"]), ANY_JSON, max_size=4)


def _top(shape: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    typical = st.fixed_dictionaries(
        {"t": st.floats(NOW - 100, NOW) | st.just(STAMP) | st.integers(int(NOW) - 9, int(NOW)), **shape},
        optional={"worker": st.sampled_from(["w-7", "a" * 64, "a" * 65, "w7\n", "x y"]) | st.none(),
                  "seq": st.integers(-1, 2**63) | st.booleans() | st.none()},
    )  # fmt: skip
    return typical | st.dictionaries(st.sampled_from(FIELDS), ANY_JSON, max_size=7)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ValidationError:
        return "invalid", None
    except PayloadError as exc:
        return "error", str(exc)


def _same_as_models(fast: Any, slow: Any, obj: dict[str, Any]) -> None:
    got = _outcome(lambda: fast(TOPIC, obj))
    if got == ("ok", None):  # in doubt: left to pydantic
        return
    assert _outcome(slow) == got, obj


@settings(max_examples=400, deadline=None)
@given(_top({"hazard": st.sampled_from(["co", "ch4", "smoke"]), "value": st.floats(-1, 1e7) | st.integers(-9, 10**7),
             "unit": st.sampled_from(["ppm", "%vol", "ppb"])}))  # fmt: skip
def test_fast_single_decodes_exactly_what_the_model_decodes(obj: dict[str, Any]) -> None:
    slow = lambda: payloads._decode_single(TOPIC, SingleReading.model_validate(obj))  # noqa: E731
    _same_as_models(fast_single, slow, obj)


@settings(max_examples=400, deadline=None)
@given(_top({"readings": st.lists(_one(), max_size=66) | ANY_JSON}))
def test_fast_multi_decodes_exactly_what_the_model_decodes(obj: dict[str, Any]) -> None:
    slow = lambda: payloads._decode_multi(TOPIC, MultiReading.model_validate(obj))  # noqa: E731
    _same_as_models(fast_multi, slow, obj)


def _no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a pydantic model was built for a common payload")

    monkeypatch.setattr(SingleReading, "model_validate", refuse)
    monkeypatch.setattr(MultiReading, "model_validate", refuse)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"t": 1795339990.5, "hazard": "co", "value": 12.5, "unit": "ppm", "seq": 7}',
        b'{"t": "2026-11-22T09:24:00Z", "hazard": "ch4", "value": 1, "unit": "%vol", "worker": "w-7"}',
        b'{"t": 1795339990, "readings": [{"hazard": "ch4", "value": 0.4, "unit": "%vol"},'
        b' {"hazard": "co", "value": 3, "unit": "ppm"}, {"hazard": "h2s", "value": 0.5, "unit": "ppm"},'
        b' {"hazard": "o2", "value": 20.9, "unit": "%vol"}]}',
    ],
)
def test_common_shapes_are_decoded_without_a_model_object(payload: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_models(monkeypatch)
    decoded = decode_readings(TOPIC, payload, NOW, max_age_s=86400 * 400)
    assert decoded.points and all(t > 0 for _k, t, _v in decoded.points)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b'{"t": 1795339990, "hazard": "co", "value": true, "unit": "ppm"}', "value: must be a JSON number"),
        (b'{"t": 1795339990, "hazard": "co", "value": "12", "unit": "ppm"}', "value: must be a JSON number"),
        (b'{"t": 1795339990, "hazard": "co", "value": 1, "unit": "ppm", "seq": -1}', "seq"),
        (b'{"t": 1795339990, "hazard": "co", "value": 1, "unit": "ppm", "worker": "a b"}', "worker"),
        (b'{"t": 1795339990, "readings": [{"hazard": "co", "value": false, "unit": "ppm"}]}', "readings.0.value"),
    ],
)
def test_strict_errors_still_come_from_the_models(payload: bytes, error: str) -> None:
    with pytest.raises(PayloadError, match=error.replace(".", r"\.")):
        decode_readings(TOPIC, payload, NOW)
