"""Turn a burst of inbound MQTT messages into one columnar batch plus side messages.

Pure: no I/O, the clock is passed in. Each data message is decoded on its own, so one bad
message becomes one dead letter and never disturbs the valid readings around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.codec import Topic, TopicKind, parse_topic
from gateway.deadletter import DeadLetter
from gateway.mqtt import InboundMessage
from gateway.payloads import AckPayload, StatusPayload, decode_ack, decode_readings, decode_status
from rules.errors import PayloadError
from rules.types import I64, ChannelKey, ChannelRegistry, ReadingBatch


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


def sort_messages(msgs: list[InboundMessage], registry: ChannelRegistry, limits: DecodeLimits, now_s: float) -> Sorted:
    chan: list[np.ndarray] = []
    ts: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    seqs: list[np.ndarray] = []
    out = Sorted(ReadingBatch.empty(), n_messages=len(msgs))
    for m in msgs:
        try:
            topic = parse_topic(m.topic, limits.prefix)
            if topic.kind is TopicKind.DATA:
                decoded = decode_readings(
                    topic, m.payload, now_s, max_age_s=limits.max_age_s, max_future_s=limits.max_future_s
                )
                for g in decoded.groups:
                    cid = registry.id_for(g.key)
                    chan.append(np.full(g.t_s.shape[0], cid, np.int64))
                    ts.append(g.t_s)
                    vals.append(g.value)
                    seqs.append(np.full(g.t_s.shape[0], -1 if decoded.seq is None else decoded.seq, np.int64))
            elif topic.kind is TopicKind.STATUS:
                if m.payload:  # an empty retained message only clears the retained status
                    out.statuses.append((topic, decode_status(m.payload), m.retain))
            else:
                out.acks.append((topic, decode_ack(m.payload), m))
        except PayloadError as exc:
            out.dead.append(DeadLetter(m.topic, str(exc), m.payload, m.received_s))
    if chan:
        out.readings = ReadingBatch(np.concatenate(chan), np.concatenate(ts), np.concatenate(vals))
        out.seq = np.concatenate(seqs)
    return out


def channel_keys(registry: ChannelRegistry) -> list[ChannelKey]:
    return registry.keys
