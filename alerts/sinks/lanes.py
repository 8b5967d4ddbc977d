"""A sink's delivery queue with two lanes: urgent (warning, alarm, critical) before routine
(`malfunction`). Bounded in total; when full, the oldest routine delivery goes first (an urgent
one only when nothing routine is left). Same calls as the `asyncio.Queue` it replaces."""

from __future__ import annotations

import asyncio
from collections import deque

from alerts.sinks.base import Delivery
from rules.types import Severity


def is_urgent(delivery: Delivery) -> bool:
    return delivery.event.severity is not Severity.MALFUNCTION


class DeliveryLanes:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._urgent: deque[Delivery] = deque()
        self._routine: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._done.set()
        self._unfinished = 0

    def qsize(self) -> int:
        return len(self._urgent) + len(self._routine)

    def full(self) -> bool:
        return self.qsize() >= self.maxsize

    def put_nowait(self, delivery: Delivery) -> None:
        (self._urgent if is_urgent(delivery) else self._routine).append(delivery)
        self._unfinished += 1
        self._done.clear()
        self._ready.set()

    def drop_oldest(self) -> Delivery:
        """Make room: the oldest routine delivery, else the oldest urgent one (counts as done)."""
        dropped = (self._routine or self._urgent).popleft()
        self.task_done()
        return dropped

    async def get(self) -> Delivery:
        while not (self._urgent or self._routine):
            self._ready.clear()
            await self._ready.wait()
        return (self._urgent or self._routine).popleft()

    def task_done(self) -> None:
        self._unfinished -= 1
        if self._unfinished <= 0:
            self._unfinished = 0
            self._done.set()

    async def join(self) -> None:
        await self._done.wait()
