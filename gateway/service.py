"""`oshmon run`: the gateway service — MQTT in, rules, alerts, storage, MQTT out.

One `asyncio.TaskGroup` of named tasks. Data flows one way per batch:
decode → store readings (durable) → PUBACK → engine → alert lifecycle → store events →
publish events and retained alarm states → sinks. Intake is a two-stage pipeline: the `decode`
task decodes batch N+1 while the `commit` task writes batch N (in a worker thread) and runs the
rest; one decoded batch waits between them at most, and batches are committed in the order they
arrived, so per-channel order holds and nothing is acknowledged before it is durable. SIGTERM
stops intake, flushes and exits 0; anything not acknowledged yet is redelivered by the broker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from alerts.types import AlertEvent
from gateway.batching import ChannelCache, DecodeLimits, Sorted, sort_messages
from gateway.deadletter import DeadLetter, DeadLetterLog
from gateway.intake import IntakeSample, IntakeWatch
from gateway.mqtt import InboundMessage, MqttEdge
from gateway.observability import GatewayMetrics, dead_letter_reason
from gateway.publisher import AlertPublisher
from gateway.runtime import Runtime
from gateway.watch import OwnTopics
from rules.errors import OshError
from rules.types import Severity

log = logging.getLogger(__name__)

TICK_S = 1.0  # wall-clock housekeeping: shift closing, escalation, silent sensors
FREEZE_EVERY_CHANNELS = 2000  # new channels between two gc.freeze() calls
EMIT_CHUNK = 500  # events recorded per step (about 50 ms of sealing and storing): the ingest loop runs between steps
STORE_TOPIC = "(store)"  # dead letters for records the store refused name this instead of an MQTT topic
#: Decoded batches waiting for the commit stage: batch N+1 is decoded while batch N is written.
PIPELINE_DEPTH = 1


@dataclass(slots=True)
class Counters:
    messages: int = 0
    readings: int = 0
    dead_letters: int = 0
    alert_events: int = 0
    exposures: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decoded:
    """One intake batch between the decode and the commit stage (nothing acknowledged yet)."""

    msgs: list[InboundMessage]
    sorted_: Sorted
    own: list[InboundMessage]
    now: float
    intake: list[AlertEvent]
    oldest: float  # arrival time of its oldest message
    started: float  # perf_counter when its decoding began


class GatewayService:
    """Wires a connected `MqttEdge` to the `Runtime` (engine, alerts, store)."""

    def __init__(
        self,
        edge: MqttEdge,
        rt: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.edge = edge
        self.rt = rt
        self.clock = clock
        self.counters = Counters()
        self.metrics = metrics or GatewayMetrics()
        self._sink_failures_seen: dict[str, int] = {}
        s = rt.settings
        bounds = (s.health.interval_min_s, s.health.interval_max_s)
        self.limits = DecodeLimits(s.topic_prefix, s.max_age_s, s.max_future_s, interval_s=bounds)
        self._stopping = asyncio.Event()
        self._channels: ChannelCache = {}
        self._dead_log = DeadLetterLog(log)
        self.publisher = AlertPublisher(edge)
        self._frozen_channels = 0
        self.intake = IntakeWatch(rt.alerts, rt.health, s.mqtt_client_id)
        self._taken = asyncio.Event()  # the commit stage took the batch handed over last
        self._in_hand: list[float] = []  # arrival time of the oldest message of each batch in hand
        self._asserted_session: int | None = None  # the MQTT connection the retained states were last asserted on
        self.watch = OwnTopics(s.topic_prefix, s.mqtt_client_id, rt.alerts)  # its alarm/alert topics

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            handoff: asyncio.Queue[_Decoded] = asyncio.Queue(maxsize=PIPELINE_DEPTH)
            ingest = tg.create_task(self._decode_loop(handoff), name="decode")
            commit = tg.create_task(self._commit_loop(handoff), name="commit")
            ticker = tg.create_task(self._tick_loop(), name="tick")
            sinks = tg.create_task(self.rt.run_sinks(self._stopping), name="sinks")
            tg.create_task(self.publisher.run(self._stopping), name="alert-publisher")
            await self._stopping.wait()
            ingest.cancel()
            commit.cancel()
            ticker.cancel()
        del sinks
        await asyncio.to_thread(self.rt.close)

    # -- intake: two stages, decode (N+1) overlapping store + ack + alerts (N) -------------------
    async def _collect(self) -> list[InboundMessage]:
        """Everything waiting (up to `batch_max_messages`); when that is less, wait up to
        `batch_max_wait_s` for more. A backlog therefore makes big batches, a trickle small ones."""
        q = self.edge.messages
        s = self.rt.settings
        await q.wait()
        batch = q.take(s.batch_max_messages)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.batch_max_wait_s
        while len(batch) < s.batch_max_messages:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(q.wait(), left)
            except TimeoutError:
                break
            batch += q.take(s.batch_max_messages - len(batch))
        return batch

    async def _decode_loop(self, handoff: asyncio.Queue[_Decoded]) -> None:
        while True:
            msgs = await self._collect()
            self._taken.clear()
            await handoff.put(self._decode(msgs))
            # Collect the next batch only once the commit stage has taken this one: at most one
            # batch is committed while the next is decoded, and a new message is never decoded
            # early only to wait behind two batches (alert latency, docs/benchmarks.md).
            await self._taken.wait()

    async def _commit_loop(self, handoff: asyncio.Queue[_Decoded]) -> None:
        while True:
            batch = await handoff.get()
            self._taken.set()
            try:
                await self._commit(batch)
            except OshError as exc:
                # Store unreachable and spool failing: do not ack; the broker redelivers.
                log.error("batch of %d messages not processed: %s", len(batch.msgs), exc)
                await asyncio.sleep(1.0)
            finally:
                self._in_hand.remove(batch.oldest)

    async def process(self, msgs: list[InboundMessage]) -> None:
        """One batch through both stages (no overlap)."""
        batch = self._decode(msgs)
        try:
            await self._commit(batch)
        finally:
            self._in_hand.remove(batch.oldest)

    @property
    def _oldest_in_hand(self) -> float | None:
        """Arrival time of the oldest message being decoded, waiting or being committed."""
        return min(self._in_hand) if self._in_hand else None

    def _decode(self, msgs: list[InboundMessage]) -> _Decoded:
        now = self.clock()
        started = time.perf_counter()
        oldest = min(m.received_s for m in msgs)
        self._in_hand.append(oldest)
        intake = self.intake.observe(IntakeSample(now, now - oldest, self.edge.messages.qsize()))
        own = [m for m in msgs if self.watch.is_own_topic(m.topic)]
        inbound = [m for m in msgs if not self.watch.is_own_topic(m.topic)] if own else msgs
        sorted_ = sort_messages(inbound, self.rt.inventory, self.limits, now, self._channels)
        return _Decoded(msgs, sorted_, own, now, intake, oldest, started)

    async def _commit(self, batch: _Decoded) -> None:
        try:
            await self._commit_batch(batch)
        finally:  # decode to commit of one batch (overlapping batches overlap here too)
            self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)

    async def _commit_batch(self, batch: _Decoded) -> None:
        rt, sorted_, now, msgs = self.rt, batch.sorted_, batch.now, batch.msgs
        if len(sorted_.readings):
            with self.metrics.store_write_seconds.time():
                refused = await asyncio.to_thread(rt.write_readings, sorted_.readings)
            self.metrics.readings_stored.inc(len(sorted_.readings) - len(refused))
            sorted_.dead += [DeadLetter(STORE_TOPIC, r.reason, r.record.encode(), now) for r in refused]
        await self._publish_dead(sorted_.dead)
        self.edge.ack_many(msgs)  # durable (or dead-lettered): now the broker may forget them
        self._count(sorted_)
        events = batch.intake + rt.health_on_batch(sorted_, now)
        if len(sorted_.readings):
            events += rt.judge(rt.engine.ingest(sorted_.readings), now)
        for topic, ack, m in sorted_.acks:
            ev, err = rt.acknowledge(
                ack.alert_id, ack.by, ack.note, now, site=topic.site, at_s=ack.at_s(), ack_id=ack.ack_id
            )
            if err is not None:
                await self._publish_dead([DeadLetter(m.topic, err, m.payload, m.received_s)])
            elif ev is not None:
                events.append(ev)
        if batch.own:
            events += await self._watch_own(batch.own, now)
        await self._emit(events)
        self._freeze_new_channels()

    def _freeze_new_channels(self) -> None:
        """Per-channel objects live as long as the gateway: once many were added, move them out of
        the cyclic garbage collector's way (`gc.freeze`), so that its full passes — which otherwise
        walk every channel's objects, hundreds of ms at 20,000 channels on a busy machine — do not
        stall an alarm. Cyclic garbage that exists at that moment is kept (there is next to none)."""
        n = len(self.rt.engine.registry)
        if n - self._frozen_channels >= FREEZE_EVERY_CHANNELS:
            gc.freeze()
            self._frozen_channels = n

    async def _watch_own(self, own: list[InboundMessage], now: float) -> list[AlertEvent]:
        """Someone else on the gateway's own topics: restore its retained states, flag forged events."""
        found = self.watch.check(own, now)
        for topic, state in found.republish:
            self.publisher.submit(topic, state, urgent=True, retain=True)
        await self._publish_dead(found.dead)
        return found.events

    def _count(self, s: Sorted) -> None:
        c = self.counters
        c.messages += s.n_messages
        c.readings += len(s.readings)
        c.dead_letters += len(s.dead)
        self.metrics.messages.inc(s.n_messages)

    def refresh_metrics(self) -> None:
        """Gauges read off the gateway when /metrics is scraped."""
        m, rt = self.metrics, self.rt
        m.intake_queue_depth.set(self.edge.messages.qsize())
        m.channels.set(len(rt.engine.registry.keys))
        m.mqtt_connected.set(1 if self.edge.connected else 0)
        by_severity: dict[str, int] = dict.fromkeys(("warning", "alarm", "critical", "malfunction"), 0)
        for a in rt.alerts.open_alerts():
            by_severity[str(a.severity)] = by_severity.get(str(a.severity), 0) + 1
        for severity, n in by_severity.items():
            m.open_alerts.labels(severity=severity).set(n)
        spool_health = getattr(rt.store, "health", None)
        m.spool_bytes.set(spool_health().spool_bytes if spool_health is not None else 0)
        for key, n in list(rt.sinks.counts.items()):
            if key.startswith("failed:"):
                sink = key.removeprefix("failed:")
                m.sink_failures.labels(sink=sink).inc(n - self._sink_failures_seen.get(sink, 0))
                self._sink_failures_seen[sink] = n

    async def _publish_dead(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        topic = f"{self.rt.settings.topic_prefix}/deadletter"
        now = self.clock()
        for d in dead:
            self._dead_log.record(d, now)
            self.metrics.dead_letters.labels(reason=dead_letter_reason(d.topic, d.error, STORE_TOPIC)).inc()
        await asyncio.gather(*(self.edge.publish(topic, d.to_wire(), qos=1) for d in dead))

    # -- outputs ----------------------------------------------------------------------------------
    async def _emit(self, events: list[AlertEvent], *, deliver: bool = True) -> None:
        """Record and publish events in chunks: between chunks the ingest loop runs, so an alarm
        is judged and published while a storm of malfunction events is still being recorded."""
        for i in range(0, len(events), EMIT_CHUNK):
            await self._emit_chunk(events[i : i + EMIT_CHUNK], deliver=deliver)

    async def _emit_chunk(self, events: list[AlertEvent], *, deliver: bool) -> None:
        if not events:
            return
        self.counters.alert_events += len(events)
        events = await asyncio.to_thread(self.rt.record_events, events)
        anchor = self.rt.audit_anchor()
        if anchor is not None:  # the chain's new head, retained: an anchor kept outside the store
            self.publisher.submit(anchor[0], anchor[1], urgent=False, retain=True)
        for ev in events:
            self.metrics.alert_events.labels(severity=str(ev.severity), event=str(ev.event)).inc()
        prefix = self.rt.settings.topic_prefix
        for ev in events:  # production order within a lane: each alert's events stay in order
            urgent = ev.severity is not Severity.MALFUNCTION
            self.watch.published_event(ev)
            self.publisher.submit(f"{prefix}/{ev.site}/alerts", orjson.dumps(ev.to_wire()), urgent=urgent)
            state = self.rt.alerts.retained_state(ev)
            if state is not None:  # None: a newer alert owns that topic now; leave it alone
                topic = f"{prefix}/{ev.site}/{ev.alarm_topic_suffix()}"
                self.watch.published_state(topic, state)
                self.publisher.submit(topic, state, urgent=urgent, retain=True)
        if deliver:
            self.rt.deliver(events)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            now = self.clock()
            self._dead_log.flush(now)
            await self._emit(self._intake_on_tick(now, late_s=loop.time() - due))  # before the silence check
            refused = self.rt.take_rejected()
            await self._publish_dead([DeadLetter(STORE_TOPIC, r.reason, r.record.encode(), now) for r in refused])
            result = self.rt.engine.tick(now)
            events = self.rt.judge(result, now) if result.exposures or len(result.conditions) else []
            events += self.rt.tick_alerts(now)
            await self._emit(events)
            await self._emit(self.rt.take_side_events(), deliver=False)  # the dispatcher sent them already
            self._reassert_on_new_connection()

    def _reassert_on_new_connection(self) -> None:
        """After every (re)connection, the retained state of every open alert is published again:
        a broker that restarted without its retained messages (or a new broker) would otherwise
        show reconnecting boards no alarm at all while the gateway holds it open."""
        session = self.edge.session
        if session is None or session == self._asserted_session:
            return
        self._asserted_session = session
        prefix = self.rt.settings.topic_prefix
        for suffix, state in self.rt.alerts.open_alarm_states():
            topic = f"{prefix}/{suffix}"
            self.watch.published_state(topic, state)
            self.publisher.submit(topic, state, urgent=False, retain=True)

    def _intake_on_tick(self, now: float, late_s: float) -> list[AlertEvent]:
        """A tick that runs late or a batch that has been in hand for long: the gateway is behind."""
        in_hand_s = 0.0 if self._oldest_in_hand is None else now - self._oldest_in_hand
        return self.intake.observe(IntakeSample(now, max(late_s, in_hand_s), self.edge.messages.qsize()))
