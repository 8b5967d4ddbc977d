"""Feed simulated messages straight through the pipeline, without a broker (a month in minutes).

The messages go through the same wire codec, engine, alert book and store as live ones; only
the MQTT hop is skipped. Used by `oshmon backfill` and by the demo for its monthly report.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

from alerts.types import AlertEvent
from gateway.batching import ChannelCache, DecodeLimits, sort_messages
from gateway.mqtt import InboundMessage
from gateway.runtime import Runtime
from rules.types import ReadingBatch
from simulators import SimMessage

BACKFILL_BATCH = 2000  # messages per engine batch at most
#: Event time one engine batch spans at most. A batch is judged at its latest time, so an alert
#: raised early in it asks for its acknowledgement that much later: this bounds that delay.
BACKFILL_SPAN_S = 60.0
#: ... and while no alert is open and no acknowledgement waits (nothing can escalate or be
#: acknowledged then; a raise still asks for its ack from its reading's time: event clock).
BACKFILL_QUIET_SPAN_S = 600.0
#: Readings stored per write (one transaction / request): judging in short spans must not mean
#: one fsync per span.
BACKFILL_WRITE_ROWS = 50_000
SIMULATED_OFFICER = "shift supervisor (simulated)"
ACK_DELAY_S = (45.0, 240.0, 600.0)  # simulated time to acknowledge, cycled: fast, usual, slow


def backfill(
    rt: Runtime,
    messages: Iterable[SimMessage],
    *,
    progress: Callable[[float], None] | None = None,
    auto_ack: bool = True,
    ack_delays_s: Sequence[float] = ACK_DELAY_S,
) -> dict[str, int]:
    """Process `messages` in event-time order; returns counts (messages, readings, alerts, dead).

    Event time is the clock here: acknowledgements and escalations happen at their own times,
    between the readings before and after them (never after a whole batch of later readings, which
    put an ack before the raise it answered in the record). With `auto_ack`, a simulated officer
    acknowledges each raised alert after a delay, so that a report made from the backfill has
    realistic acknowledgement times.
    """
    run = _Backfill(rt, ack_delays_s if auto_ack else ())
    due = run.next_due()
    for i, m in enumerate(messages):
        if m.t_s > due:
            run.flush()
            due = run.next_due()
            while due < m.t_s:
                run.at(due)
                due = run.next_due()
            if progress is not None:
                progress(m.t_s)
        run.chunk.append(InboundMessage(m.topic, m.payload, m.qos, m.retain, i, 0, m.t_s))
        run.t_last = m.t_s
        if len(run.chunk) >= BACKFILL_BATCH or m.t_s - run.chunk[0].received_s > run.span_s():
            run.flush()
            due = run.next_due()
            if progress is not None:
                progress(run.t_last)
    run.flush()
    run.write()
    final = rt.engine.tick(run.t_last + 86400.0)  # close the last shifts
    if final.exposures:
        rt.store.write_exposures(final.exposures)
    if progress is not None:
        progress(run.t_last)
    return run.counts


class _Backfill:
    """One backfill's state: the batch being collected, acks waiting for their time, counts."""

    def __init__(self, rt: Runtime, ack_delays_s: Sequence[float]) -> None:
        s = rt.settings
        self.rt, self.ack_delays_s = rt, tuple(ack_delays_s)
        rt.alerts.clock_is_event_time = True
        # Old event times are the point of a backfill: accept any age, still refuse the future.
        self.limits = DecodeLimits(s.topic_prefix, max_age_s=float("inf"), max_future_s=s.max_future_s)
        self.counts = {"messages": 0, "readings": 0, "alert_events": 0, "dead_letters": 0}
        self.chunk: list[InboundMessage] = []
        self.t_last = 0.0
        self.pending: list[tuple[float, str]] = []  # (due event time, alert id), kept sorted
        self.channels: ChannelCache = {}
        self.unwritten: list[ReadingBatch] = []
        self.unwritten_rows = 0

    def span_s(self) -> float:
        busy = self.pending or self.rt.alerts.open_count()
        return BACKFILL_SPAN_S if busy else BACKFILL_QUIET_SPAN_S

    def next_due(self) -> float:
        """The next acknowledgement or escalation in event time (inf: none)."""
        ack = self.pending[0][0] if self.pending else math.inf
        deadline = self.rt.alerts.next_deadline()
        return min(ack, math.inf if deadline is None else deadline)

    def flush(self) -> None:
        if not self.chunk:
            return
        rt, now = self.rt, max(self.t_last, 0.0)
        sorted_ = sort_messages(self.chunk, rt.engine.registry, self.limits, now + rt.settings.max_future_s,
                                self.channels)  # fmt: skip
        if len(sorted_.readings):  # the clock is never behind the readings it judges (series run ahead)
            now = max(now, float(sorted_.readings.t_s.max()))
        events = rt.health_on_batch(sorted_, now)
        if len(sorted_.readings):
            self.unwritten.append(sorted_.readings)
            self.unwritten_rows += len(sorted_.readings)
            if self.unwritten_rows >= BACKFILL_WRITE_ROWS:
                self.write()
            events += rt.judge(rt.engine.ingest(sorted_.readings), now)
        events += rt.judge(rt.engine.tick(now), now)
        self._record(events)
        self.counts["messages"] += len(self.chunk)
        self.counts["readings"] += len(sorted_.readings)
        self.counts["dead_letters"] += len(sorted_.dead)
        self.chunk.clear()

    def write(self) -> None:
        if self.unwritten:
            self.counts["dead_letters"] += len(self.rt.write_readings(ReadingBatch.concat(self.unwritten)))
            self.unwritten, self.unwritten_rows = [], 0

    def at(self, t_s: float) -> None:
        """Acknowledgements due at `t_s`, then escalations due by then."""
        events: list[AlertEvent] = []
        while self.pending and self.pending[0][0] <= t_s:
            due, alert_id = self.pending.pop(0)
            ev, _err = self.rt.acknowledge(alert_id, SIMULATED_OFFICER, "checked on site (simulated)", due)
            if ev is not None:  # an alert that cleared first is not acknowledged
                events.append(ev)
        events += self.rt.alerts.tick(t_s)
        self._record(events)

    def _record(self, events: list[AlertEvent]) -> None:
        if self.ack_delays_s:
            for ev in events:
                if ev.event == "raised" or ev.reason == "severity_rise":
                    delay = self.ack_delays_s[self.counts["alert_events"] % len(self.ack_delays_s)]
                    bisect.insort(self.pending, (ev.t_s + delay, ev.alert_id))
        self.rt.record_events(events)
        self.counts["alert_events"] += len(events)
