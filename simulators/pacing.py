"""Pace simulated messages on the wall clock: message m is due `(m.t_s - t_first) / speed`
seconds after the first one was yielded. `speed=math.inf` (backfill) never sleeps.

The simulator's event times are what the payloads carry; pacing only decides *when* to hand
them to the publisher. With speed > 1, event time runs ahead of the wall clock, and SPEC §2.1
dead-letters readings more than 5 minutes in the future: start the simulation in the past with
`live_start(now, duration, speed)` so that the last message is due exactly when its event time
is reached. A backfill (`speed=inf`) of more than 7 days needs the gateway's maximum reading
age raised to match.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Protocol

from simulators.messages import SimMessage

MIN_SLEEP_S = 0.002  # below this, keep going and catch up on the next sleep
_YIELD_EVERY = 512  # async: hand control back to the loop at least this often when not sleeping


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class AsyncClock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """`time.monotonic` and `time.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AsyncioClock:
    """`time.monotonic` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _check_speed(speed: float) -> None:
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (math.inf: as fast as possible), got {speed}")


def live_start(now_s: float, duration_s: float, speed: float) -> float:
    """Event-time start such that paced messages are never ahead of the wall clock.

    Paced from wall time `now_s`, event time is start + (w - now_s) * speed at wall time w;
    requiring that to be <= w at the end (w = now_s + duration_s / speed) gives
    start = now_s - duration_s * (1 - 1 / speed). With speed = 1 this is `now_s`.
    """
    _check_speed(speed)
    return now_s - duration_s * (1.0 - 1.0 / speed)


def paced(messages: Iterable[SimMessage], speed: float, clock: Clock | None = None) -> Iterator[SimMessage]:
    """Yield `messages` (in event-time order), sleeping so each is yielded when it is due."""
    _check_speed(speed)
    clk = clock or SystemClock()
    origin: tuple[float, float] | None = None  # (event time, wall time) of the first message
    for m in messages:
        if origin is None:
            origin = (m.t_s, clk.monotonic())
        elif math.isfinite(speed):
            delay = origin[1] + (m.t_s - origin[0]) / speed - clk.monotonic()
            if delay > MIN_SLEEP_S:
                clk.sleep(delay)
        yield m


async def apaced(
    messages: Iterable[SimMessage], speed: float, clock: AsyncClock | None = None
) -> AsyncIterator[SimMessage]:
    """`paced` for asyncio: awaits instead of sleeping, and yields to the loop regularly."""
    _check_speed(speed)
    clk = clock or AsyncioClock()
    origin: tuple[float, float] | None = None
    busy = 0
    for m in messages:
        if origin is None:
            origin = (m.t_s, clk.monotonic())
        elif math.isfinite(speed):
            delay = origin[1] + (m.t_s - origin[0]) / speed - clk.monotonic()
            if delay > MIN_SLEEP_S:
                await clk.sleep(delay)
                busy = 0
        busy += 1
        if busy >= _YIELD_EVERY:
            await clk.sleep(0)
            busy = 0
        yield m
