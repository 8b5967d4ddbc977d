"""Turn a burst of inbound MQTT messages into one columnar batch plus side messages.

Pure: no I/O, the clock is passed in. Each data message is decoded on its own, so one bad
message becomes one dead letter and never disturbs the valid readings around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alerts.health_meta import status_problems
from gateway.codec import Topic, TopicKind, parse_topic
from gateway.deadletter import DeadLetter
from gateway.mqtt import InboundMessage
from gateway.payloads import AckPayload, StatusPayload, decode_ack, decode_readings, decode_status
from gateway.wirejson import payload_too_big
from rules.errors import PayloadError
from rules.text import shown
from rules.types import F64, I64, ChannelKey, ReadingBatch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Sorted:
    readings: ReadingBatch
    seq: I64 = field(default_factory=lambda: np.empty(0, np.int64))  # per reading; -1: none sent
    statuses: list[tuple[Topic, StatusPayload, bool]] = field(default_factory=list)  # (.., retained)
    acks: list[tuple[Topic, AckPayload, InboundMessage]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    n_messages: int = 0


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    prefix: str
    max_age_s: float
    max_future_s: float
    #: Accepted range of a status message's `interval_s` (OSH_HEALTH); None: not checked.
    interval_s: tuple[float, float] | None = None


class _Columns:
    """Readings gathered column by column: scalars into lists, series as arrays."""

    def __init__(self) -> None:
        self.chan: list[int] = []
        self.t: list[float] = []
        self.v: list[float] = []
        self.seq: list[int] = []
        self.parts: list[tuple[I64, F64, F64, I64]] = []

    def batch(self) -> tuple[ReadingBatch, I64]:
        parts = [(np.array(self.chan, np.int64), np.array(self.t), np.array(self.v), np.array(self.seq, np.int64))]
        parts += self.parts
        cols = [np.concatenate([p[i] for p in parts]) for i in range(4)]
        return ReadingBatch(cols[0], cols[1], cols[2]), cols[3]


ChannelCache = dict[tuple[str, str, str | None], int]


class ChannelIds(Protocol):
    """`ChannelRegistry`, or `gateway.inventory.ChannelInventory` (refuses channels over the cap)."""

    def id_for(self, key: ChannelKey) -> int: ...


def _cached_id(ids: ChannelCache, registry: ChannelIds, topic: str, key: ChannelKey) -> int:
    cid = ids.get((topic, key.hazard, key.worker))
    if cid is None:
        cid = ids[(topic, key.hazard, key.worker)] = registry.id_for(key)
    return cid


def sort_messages(
    msgs: list[InboundMessage],
    registry: ChannelIds,
    limits: DecodeLimits,
    now_s: float,
    cache: ChannelCache | None = None,
) -> Sorted:
    """Decode every message on its own; `cache` maps (topic, hazard, worker) to channel ids."""
    cols = _Columns()
    ids: ChannelCache = cache if cache is not None else {}
    out = Sorted(ReadingBatch.empty(), n_messages=len(msgs))
    for m in msgs:
        if m.oversize_bytes:  # rejected on arrival, before any parsing (SPEC §2.1: 256 KiB)
            error = str(payload_too_big(m.oversize_bytes))
            out.dead.append(DeadLetter(m.topic, error, m.payload, m.received_s, m.oversize_bytes))
            continue
        try:
            topic = parse_topic(m.topic, limits.prefix)
            if topic.kind is TopicKind.DATA:
                decoded = decode_readings(
                    topic, m.payload, now_s, max_age_s=limits.max_age_s, max_future_s=limits.max_future_s
                )
                seq = -1 if decoded.seq is None else decoded.seq
                # every channel id first: a channel beyond the inventory refuses the message whole
                point_ids = [_cached_id(ids, registry, m.topic, key) for key, _, _ in decoded.points]
                series_ids = [registry.id_for(g.key) for g in decoded.series]
                for cid, (_key, t, v) in zip(point_ids, decoded.points, strict=True):
                    cols.chan.append(cid)
                    cols.t.append(t)
                    cols.v.append(v)
                    cols.seq.append(seq)
                for cid, g in zip(series_ids, decoded.series, strict=True):
                    n = g.t_s.shape[0]
                    cols.parts.append((np.full(n, cid, np.int64), g.t_s, g.value, np.full(n, seq, np.int64)))
            elif topic.kind is TopicKind.STATUS:
                admit = getattr(registry, "admit_device", None)
                if admit is not None:  # a status of a device beyond the inventory is refused too
                    admit(topic.site, topic.zone, topic.device)
                if m.payload:  # an empty retained message only clears the retained status
                    status = _checked_status(decode_status(m.payload), m, limits, now_s, out.dead)
                    out.statuses.append((topic, status, m.retain))
            else:
                out.acks.append((topic, decode_ack(m.payload), m))
        except PayloadError as exc:
            out.dead.append(DeadLetter(m.topic, str(exc), m.payload, m.received_s))
        except Exception as exc:  # a decoder bug costs this one message, never the batch or the gateway
            log.exception("could not decode a message from %s", shown(m.topic))
            reason = f"the gateway could not decode this message ({type(exc).__name__}): see the gateway's log"
            out.dead.append(DeadLetter(m.topic, reason, m.payload, m.received_s))
    out.readings, out.seq = cols.batch()
    return out


def _checked_status(
    status: StatusPayload, m: InboundMessage, limits: DecodeLimits, now_s: float, dead: list[DeadLetter]
) -> StatusPayload:
    """Metadata out of range (interval, calibration date in the future) is dead-lettered and
    dropped; the rest of the status (e.g. `offline`) still counts."""
    if limits.interval_s is None:
        return status
    lo, hi = limits.interval_s
    bad = status_problems(status.model_dump(exclude_none=True), lo, hi, now_s, limits.max_future_s)
    if not bad:
        return status
    dead.extend(DeadLetter(m.topic, reason, m.payload, m.received_s) for reason in bad.values())
    kept = {k: v for k, v in status.model_dump().items() if k not in bad}
    return StatusPayload.model_validate(kept)
