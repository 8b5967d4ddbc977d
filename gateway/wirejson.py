"""Strict JSON at the wire edge: size cap before parsing, duplicate keys, readable validation errors.

orjson keeps the *last* of two equal keys (`{"value": 1, "value": 999}` reads as 999), which
silently changes what a message means. RFC 8259 §4 says names "SHOULD be unique"; the gateway
makes it a MUST and dead-letters the message. The check is exact and cheap on the hot path:

- every key/value pair in the text has one `:` separator, and strings hold the other colons;
- so when the raw bytes hold exactly as many `:` as the parsed objects have keys, the text has no
  pair that parsing dropped (shortcut 1, typical for epoch-time payloads);
- otherwise, if the text has no `\\u` escape (which could hide a colon), orjson's re-encoding of
  the parsed value has as many `:` as the text exactly when nothing was dropped (shortcut 2:
  colons in RFC 3339 times);
- only when both shortcuts fail (a duplicate, or `\\u` escapes) does stdlib `json` re-parse the
  bytes with an `object_pairs_hook` that names the duplicate key.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.codec import MAX_PAYLOAD_BYTES
from rules.errors import PayloadError

EXCERPT_CHARS = 40  # how much of an offending value an error message quotes

#: What each strictly typed field must hold, for type errors (SPEC §2.1).
_EXPECTED = {
    "t": "epoch seconds (a JSON number) or an RFC 3339 string",
    "t0": "epoch seconds (a JSON number) or an RFC 3339 string",
    "dt": "a JSON number of seconds",
    "interval_s": "a JSON number of seconds",
    "value": "a JSON number (not a string or a boolean)",
    "values": "JSON numbers (not strings or booleans)",
    "seq": "a JSON integer (not a string, boolean or fraction)",
}
_UNION_TAGS = {"float", "int", "str", "bool", "list", "dict", "none"}
_TYPE_ERRORS = {"float_type", "int_type", "string_type", "list_type", "int_from_float", "bool_type"}


def payload_too_big(size: int) -> PayloadError:
    return PayloadError(
        f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (256 KiB, SPEC §2.1): "
        "split it into several messages"
    )


def load_json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object with unique keys at every level, or a PayloadError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise payload_too_big(len(payload))
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(obj).__name__}")
    if not _surely_unique_keys(payload, obj):
        _find_duplicate_key(payload)
    return obj


def _surely_unique_keys(raw: bytes, obj: dict[str, Any]) -> bool:
    colons = raw.count(b":")
    readings = obj.get("readings")
    keys = len(obj) + (sum(len(r) for r in readings if isinstance(r, dict)) if isinstance(readings, list) else 0)
    if colons == keys:
        return True
    if b"\\u" in raw:
        return False
    try:
        return colons == orjson.dumps(obj).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels): the exact check decides
        return False


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise PayloadError(
                f"key {excerpt(key)} appears twice in one JSON object: each field may be given once "
                "(which one was meant is unknowable)"
            )
        seen.add(key)
    return dict(pairs)


def _find_duplicate_key(raw: bytes) -> None:
    try:
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    except RecursionError:
        raise PayloadError("payload nests objects too deeply to be checked for duplicate keys") from None
    except ValueError:  # orjson accepted it; a corner where stdlib json differs is no reason to reject
        return


def excerpt(value: object) -> str:
    """A short JSON rendering of an offending value, for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = type(value).__name__
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def validation_reason(exc: ValidationError) -> str:
    """The first pydantic error as `where: what to send`, naming the field and quoting the input."""
    first = exc.errors()[0]
    # pydantic adds the union member ("float", "str") to the location; keep field names and indices
    loc = [p for p in first["loc"] if isinstance(p, int) or not _is_union_tag(p)]
    where = ".".join(str(p) for p in loc) or "payload"
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if first["type"] in _TYPE_ERRORS and field in _EXPECTED:
        return f"{where}: must be {_EXPECTED[field]}, got {excerpt(first['input'])}"
    return f"{where}: {first['msg']}"


def _is_union_tag(part: str) -> bool:
    return part in _UNION_TAGS or "[" in part or "-" in part
