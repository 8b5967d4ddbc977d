"""Alarms first: the gateway's outgoing alert traffic in two lanes, urgent before routine.

Alert events and retained alarm states are not handed to paho all at once: paho sends in call
order, so a critical alarm published after 20,000 `offline` events would wait behind all of them
(issue 15: a real alarm waited 22 s). Instead they wait here, in two lanes: **urgent** (every
severity except `malfunction`: warnings, alarms, critical, and their escalations, acks and
clears) and **routine** (`malfunction`: the monitoring's own health). A fixed number of workers
publish (QoS 1) and wait for the broker's PUBACK, so at most `window` messages are in paho's
queue or on the wire at any time; each free worker takes the oldest urgent message first. An
urgent message therefore waits for at most one in-flight window, whatever the routine backlog.

Order is kept within a lane (an alert's events, and its retained state after its event, go out
in the order they were produced); a lane is unbounded because an alert is never dropped (SPEC §6).
A PUBACK that does not come in time is logged; paho keeps the message and resends it after a
reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Protocol

log = logging.getLogger(__name__)

#: Messages on the wire at once. Loopback PUBACKs take about 0.2 ms, so 32 workers carry well over
#: 10,000 messages/s, while an urgent message queues behind at most 32 others.
PUBLISH_WINDOW = 32
PUBACK_WAIT_S = 30.0
DRAIN_S = 10.0  # on shutdown, how long to wait for the lanes to empty
MAX_ATTEMPTS = 5  # a message paho refuses (not a lost connection) is tried this often, 1 s apart


class Publishes(Protocol):
    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, wait_s: float = 30.0
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool
    attempts: int = 0


class AlertPublisher:
    """`submit(...)` never waits; `run(stop)` is the task that publishes (see the module docstring)."""

    def __init__(self, edge: Publishes, window: int = PUBLISH_WINDOW) -> None:
        self._edge = edge
        self._window = window
        self._urgent: deque[Outgoing] = deque()
        self._routine: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()  # set by the worker that leaves everything published
        self._busy = 0
        self.counts: Counter[str] = Counter()

    def submit(self, topic: str, payload: bytes, *, urgent: bool, retain: bool = False) -> None:
        (self._urgent if urgent else self._routine).append(Outgoing(topic, payload, retain))
        self.counts["urgent" if urgent else "routine"] += 1
        self._ready.set()

    def backlog(self) -> tuple[int, int]:
        """(urgent, routine) messages not yet handed to the broker."""
        return len(self._urgent), len(self._routine)

    def idle(self) -> bool:
        return not self._urgent and not self._routine and self._busy == 0

    async def run(self, stop: asyncio.Event) -> None:
        workers = [asyncio.create_task(self._work(), name=f"publish-{i}") for i in range(self._window)]
        try:
            await stop.wait()
            await self.drain(DRAIN_S)
        finally:
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await w

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything submitted has been acknowledged by the broker (or the timeout)."""
        if not self.idle():
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout_s)
        if not self.idle():
            log.warning("shutting down with alert messages unpublished: %d urgent, %d routine", *self.backlog())
        return self.idle()

    async def _next(self) -> tuple[Outgoing, deque[Outgoing]]:
        while not (self._urgent or self._routine):
            self._ready.clear()
            await self._ready.wait()
        lane = self._urgent if self._urgent else self._routine
        return lane.popleft(), lane

    async def _work(self) -> None:
        while True:
            msg, lane = await self._next()
            self._busy += 1
            try:
                await self._edge.publish(msg.topic, msg.payload, qos=1, retain=msg.retain, wait_s=PUBACK_WAIT_S)
                self.counts["published"] += 1
            except TimeoutError:  # paho still holds it and resends after a reconnect
                self.counts["puback_timeouts"] += 1
                log.warning("no PUBACK for %s within %.0f s; the MQTT client will resend it", msg.topic, PUBACK_WAIT_S)
            except ConnectionError as exc:  # refused before it reached paho's queue: try again, a few times
                if msg.attempts + 1 >= MAX_ATTEMPTS:
                    self.counts["refused"] += 1
                    log.error("%s; given up after %d attempts (the event is stored)", exc, MAX_ATTEMPTS)
                else:
                    self.counts["retries"] += 1
                    log.warning("%s; retrying", exc)
                    lane.appendleft(replace(msg, attempts=msg.attempts + 1))
                    self._ready.set()
                    await asyncio.sleep(1.0)
            finally:
                self._busy -= 1
                if self.idle():
                    self._drained.set()
