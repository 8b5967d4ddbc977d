"""Routes alert events to sinks; each sink has its own bounded queue and task.

`submit()` never awaits and never blocks: a slow or dead sink only fills its own queue, so ingest
and the other sinks go on. Each queue has two lanes: warnings, alarms and critical events are
delivered before `malfunction` events queued earlier (alerts/sinks/lanes.py).
A delivery is retried with capped jittered backoff; when it finally
fails, the sink is reported as a `malfunction` alert (rule `offline`, hazard `sink`, zone
`gateway`, device = sink name) through the `AlertBook`, sent to the *other* sinks, and cleared
when the sink delivers again. A full queue drops its oldest delivery (counted, and reported the
same way): the event is still stored and on the other sinks and the retained alarm topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from alerts.lifecycle import AlertBook
from alerts.sinks.base import Delivery, RetryPolicy, Sink
from alerts.sinks.lanes import DeliveryLanes
from alerts.state import AlertSubject
from alerts.types import AlertEvent, AlertEventKind
from rules.errors import SinkError
from rules.types import RuleKind, Severity

log = logging.getLogger("oshmon.alerts.dispatch")

SINK_ZONE = "gateway"
SINK_HAZARD = "sink"


@dataclass(frozen=True, slots=True)
class Route:
    """Which events a sink receives; None means any. A sink without routes receives everything."""

    sites: frozenset[str] | None = None
    severities: frozenset[Severity] | None = None
    events: frozenset[AlertEventKind] | None = None

    def matches(self, event: AlertEvent) -> bool:
        return (
            (self.sites is None or event.site in self.sites)
            and (self.severities is None or event.severity in self.severities)
            and (self.events is None or event.event in self.events)
        )


class _Lane:
    def __init__(self, sink: Sink, routes: Sequence[Route], size: int) -> None:
        self.sink = sink
        self.routes = routes
        self.queue = DeliveryLanes(size)  # alarms before malfunctions
        self.task: asyncio.Task[None] | None = None

    def wants(self, event: AlertEvent) -> bool:
        return not self.routes or any(r.matches(event) for r in self.routes)


class Dispatcher:
    """Fan-out of alert events to sinks. Use as `async with Dispatcher(...) as d: d.submit(ev)`.

    `book` (optional) turns sink failures into malfunction alerts; `on_event` receives every event
    the dispatcher generates itself, so the gateway can store it like any other lifecycle event.
    """

    def __init__(
        self, sinks: Sequence[Sink], routes: Mapping[str, Sequence[Route]] | None = None, *,
        book: AlertBook | None = None, on_event: Callable[[AlertEvent], None] | None = None,
        retry: RetryPolicy | None = None, queue_size: int = 1000, clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        routes = routes or {}
        self._lanes = {s.name: _Lane(s, tuple(routes.get(s.name, ())), queue_size) for s in sinks}
        self._book, self._on_event = book, on_event
        self._retry = retry or RetryPolicy()
        self._clock, self._rng = clock, rng or random.Random()
        self.counts: Counter[str] = Counter()

    async def __aenter__(self) -> Dispatcher:
        for name, lane in self._lanes.items():
            lane.task = asyncio.create_task(self._run(lane), name=f"alert-sink-{name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def submit(self, event: AlertEvent, retained: bytes | None = None, exclude: Collection[str] = ()) -> None:
        """Queue `event` for every sink whose routes match; returns at once."""
        delivery = Delivery(event, retained)
        for name, lane in self._lanes.items():
            if name in exclude or not lane.wants(event):
                continue
            if lane.queue.full():
                lane.queue.drop_oldest()
                self.counts[f"dropped:{name}"] += 1
                self._sink_failed(lane, event.site, "its queue is full (sink too slow or down)")
            lane.queue.put_nowait(delivery)
            self.counts[f"queued:{name}"] += 1

    def submit_many(
        self, events: Sequence[AlertEvent], retained: Callable[[AlertEvent], bytes | None] | None = None
    ) -> None:
        """`submit` each event; `retained` (e.g. `AlertBook.retained_state`) gives its retained payload."""
        for ev in events:
            self.submit(ev, retained(ev) if retained is not None else None)

    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 5.0) -> None:
        """Task form for the service's TaskGroup: deliver until `stop` is set, then drain and close."""
        await self.__aenter__()
        try:
            await stop.wait()
        finally:
            await self.aclose(drain_timeout_s)

    def backlog(self) -> dict[str, int]:
        return {name: lane.queue.qsize() for name, lane in self._lanes.items()}

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queue is empty (True) or the timeout passes (False)."""
        waits = [asyncio.create_task(lane.queue.join()) for lane in self._lanes.values()]
        _done, pending = await asyncio.wait(waits, timeout=timeout_s) if waits else (set(), set())
        for task in pending:
            task.cancel()
        return not pending

    async def aclose(self, drain_timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to the timeout), then stop the tasks and close the sinks."""
        if not await self.drain(drain_timeout_s):
            log.warning("alert sinks closed with undelivered events: %s", self.backlog())
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            with contextlib.suppress(Exception):
                await lane.sink.aclose()

    async def _run(self, lane: _Lane) -> None:
        while True:
            delivery = await lane.queue.get()
            try:
                await self._deliver(lane, delivery)
            except Exception:  # a bug in a sink must not stop its lane
                log.exception("alert sink %s crashed on an event", lane.sink.name)
            finally:
                lane.queue.task_done()

    async def _deliver(self, lane: _Lane, delivery: Delivery) -> None:
        name, reason = lane.sink.name, ""
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                await lane.sink.send(delivery)
            except SinkError as exc:
                reason = str(exc)
                if not exc.retryable:
                    break
            except Exception as exc:  # foreign errors: the class only, their text may hold a URL or key
                reason = f"{name}: {type(exc).__name__}"
            else:
                self.counts[f"delivered:{name}"] += 1
                self._sink_ok(lane, delivery.event.site)
                return
            self.counts[f"retries:{name}"] += 1
            if attempt < self._retry.max_attempts:
                await asyncio.sleep(self._retry.delay_s(attempt, self._rng))
        self.counts[f"failed:{name}"] += 1
        log.error("alert %s not delivered via %s: %s", delivery.event.alert_id, name, reason)
        self._sink_failed(lane, delivery.event.site, reason)

    # ---- sink health as malfunction alerts -------------------------------------------------
    def _sink_failed(self, lane: _Lane, site: str, reason: str) -> None:
        if self._book is None:
            return
        now = self._clock()
        text = f"Alert delivery via {lane.sink.name} failed: {reason}"
        events = self._book.raise_health(_subject(site, lane), RuleKind.OFFLINE, t_s=now, now_s=now, message=text)
        self._publish(events, lane.sink.name)

    def _sink_ok(self, lane: _Lane, site: str) -> None:
        if self._book is None or not self._book.is_open(_subject(site, lane), RuleKind.OFFLINE):
            return
        now = self._clock()
        text = f"Alert delivery via {lane.sink.name} works again"
        events = self._book.clear_health(_subject(site, lane), RuleKind.OFFLINE, t_s=now, now_s=now, message=text)
        self._publish(events, lane.sink.name)

    def _publish(self, events: list[AlertEvent], failed_sink: str) -> None:
        assert self._book is not None
        for ev in events:
            self.counts["sink_alerts"] += 1
            if self._on_event is not None:
                self._on_event(ev)
            self.submit(ev, self._book.retained_state(ev), exclude=(failed_sink,))


def _subject(site: str, lane: _Lane) -> AlertSubject:
    return AlertSubject(site, SINK_ZONE, lane.sink.name, SINK_HAZARD, None)
