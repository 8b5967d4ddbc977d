"""Spool records: one write call (readings batch, exposures, alert events) as bytes and back.

Readings keep their arrays as raw little-endian bytes after a small JSON header naming only the
channels the batch uses; exposures and alert events are JSON. The first byte tells the kind.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from alerts.types import AlertEvent, AlertEventKind
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, ReadingBatch, RuleKind, Severity
from storage.base import Store
from storage.records import channels_used

READINGS, EXPOSURES, ALERTS = b"R", b"E", b"A"
_HEADER_LEN = struct.Struct("<I")


def _key_json(key: ChannelKey) -> list[str | None]:
    return [key.site, key.zone, key.device, str(key.hazard), key.worker]


def _key(raw: list[Any]) -> ChannelKey:
    return ChannelKey(raw[0], raw[1], raw[2], Hazard(raw[3]), raw[4])


def encode_readings(keys: Sequence[ChannelKey], batch: ReadingBatch) -> bytes:
    uniq, local = channels_used(batch.channel, len(keys))
    header = orjson.dumps({"n": len(batch), "keys": [_key_json(keys[c]) for c in uniq.tolist()]})
    return b"".join(
        (
            READINGS, _HEADER_LEN.pack(len(header)), header, local.astype("<i8").tobytes(),
            batch.t_s.astype("<f8").tobytes(), batch.value.astype("<f8").tobytes(),
        )
    )  # fmt: skip


def _decode_readings(body: memoryview) -> tuple[list[ChannelKey], ReadingBatch]:
    (size,) = _HEADER_LEN.unpack_from(body)
    header = orjson.loads(body[4 : 4 + size])
    n, start = int(header["n"]), 4 + size
    channel = np.frombuffer(body, "<i8", n, start).astype(np.int64)
    t_s = np.frombuffer(body, "<f8", n, start + 8 * n).astype(np.float64)
    value = np.frombuffer(body, "<f8", n, start + 16 * n).astype(np.float64)
    return [_key(k) for k in header["keys"]], ReadingBatch(channel, t_s, value)


def encode_exposures(records: Sequence[ExposureRecord]) -> bytes:
    items = []
    for r in records:
        item = dataclasses.asdict(r)
        item["key"] = _key_json(r.key)
        items.append(item)
    return EXPOSURES + orjson.dumps(items)


def encode_alerts(events: Sequence[AlertEvent]) -> bytes:
    return ALERTS + orjson.dumps([dataclasses.asdict(e) for e in events])


def _decode_exposures(body: memoryview) -> list[ExposureRecord]:
    out = []
    for item in orjson.loads(body):
        item["key"] = _key(item["key"])
        out.append(ExposureRecord(**item))
    return out


def _decode_alerts(body: memoryview) -> list[AlertEvent]:
    out = []
    for item in orjson.loads(body):
        item["event"] = AlertEventKind(item["event"])
        item["severity"] = Severity(item["severity"])
        item["rule"] = RuleKind(item["rule"])
        out.append(AlertEvent(**item))
    return out


def write_to(store: Store, record: bytes) -> None:
    """Replay one spool record into `store` (its write errors propagate)."""
    kind, body = record[:1], memoryview(record)[1:]
    if kind == READINGS:
        store.write_readings(*_decode_readings(body))
    elif kind == EXPOSURES:
        store.write_exposures(_decode_exposures(body))
    elif kind == ALERTS:
        store.write_alert_events(_decode_alerts(body))
    else:
        raise ValueError(f"unknown spool record kind {kind!r}")
