"""Feed simulated messages straight through the pipeline, without a broker (a month in minutes).

The messages go through the same wire codec, engine, alert book and store as live ones; only
the MQTT hop is skipped. Used by `oshmon backfill` and by the demo for its monthly report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from alerts.types import AlertEvent
from gateway.batching import ChannelCache, DecodeLimits, sort_messages
from gateway.mqtt import InboundMessage
from gateway.runtime import Runtime
from simulators import SimMessage

BACKFILL_BATCH = 2000  # messages per engine batch
SIMULATED_OFFICER = "shift supervisor (simulated)"
ACK_DELAY_S = (45.0, 240.0, 600.0)  # simulated time to acknowledge, cycled: fast, usual, slow


def backfill(
    rt: Runtime,
    messages: Iterable[SimMessage],
    *,
    progress: Callable[[float], None] | None = None,
    auto_ack: bool = True,
) -> dict[str, int]:
    """Process `messages` in event-time order; returns counts (messages, readings, alerts, dead).

    With `auto_ack`, a simulated officer acknowledges each raised alert after a delay, so that a
    report made from the backfill has realistic acknowledgement times.
    """
    s = rt.settings
    # Old event times are the point of a backfill: accept any age, still refuse the future.
    limits = DecodeLimits(s.topic_prefix, max_age_s=float("inf"), max_future_s=s.max_future_s)
    counts = {"messages": 0, "readings": 0, "alert_events": 0, "dead_letters": 0}
    chunk: list[InboundMessage] = []
    t_last = 0.0
    pending: list[tuple[float, str]] = []  # (due event time, alert id)
    channels: ChannelCache = {}

    def flush() -> None:
        now = max(t_last, 0.0)
        sorted_ = sort_messages(chunk, rt.engine.registry, limits, now + s.max_future_s, channels)
        events = rt.health_on_batch(sorted_, now)
        if len(sorted_.readings):
            counts["dead_letters"] += len(rt.write_readings(sorted_.readings))
            events += rt.judge(rt.engine.ingest(sorted_.readings), now)
        events += rt.judge(rt.engine.tick(now), now)
        if auto_ack:
            events += _acks_due(rt, pending, now)
            for ev in events:
                if ev.event == "raised":
                    delay = ACK_DELAY_S[counts["alert_events"] % len(ACK_DELAY_S)]
                    pending.append((ev.t_s + delay, ev.alert_id))
        rt.record_events(events)
        counts["messages"] += len(chunk)
        counts["readings"] += len(sorted_.readings)
        counts["alert_events"] += len(events)
        counts["dead_letters"] += len(sorted_.dead)
        chunk.clear()

    for i, m in enumerate(messages):
        chunk.append(InboundMessage(m.topic, m.payload, m.qos, m.retain, i, 0, m.t_s))
        t_last = m.t_s
        if len(chunk) >= BACKFILL_BATCH:
            flush()
            if progress is not None:
                progress(t_last)
    if chunk:
        flush()
    final = rt.engine.tick(t_last + 86400.0)  # close the last shifts
    if final.exposures:
        rt.store.write_exposures(final.exposures)
    if progress is not None:
        progress(t_last)
    return counts


def _acks_due(rt: Runtime, pending: list[tuple[float, str]], now: float) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    due = [p for p in pending if p[0] <= now]
    for p in due:
        pending.remove(p)
        ev, _err = rt.acknowledge(p[1], SIMULATED_OFFICER, "checked on site (simulated)", p[0])
        if ev is not None:
            out.append(ev)
    return out
