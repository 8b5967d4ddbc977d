"""What every sink implements, and the retry policy the dispatcher applies to it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from alerts.types import AlertEvent


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one sink; `retained` is the payload for the retained alarm topic (MQTT only):
    bytes to publish, b"" to clear it, None to leave it alone (see `AlertBook.retained_state`)."""

    event: AlertEvent
    retained: bytes | None = None


class Sink(Protocol):
    """Delivers alert events somewhere. `send` raises `SinkError` (retryable or not) on failure.

    `name` appears in logs, metrics and sink-failure alerts; it must be a valid MQTT topic level
    (`[A-Za-z0-9_.-]`) and must never contain a secret. Error messages never contain secrets.
    """

    name: str

    async def send(self, delivery: Delivery) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter ("equal jitter"): attempt n waits
    d/2 + uniform(0, d/2) with d = min(cap_s, base_s * 2**(n-1)); at most `max_attempts` tries."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.cap_s, self.base_s * 2.0 ** max(0, attempt - 1))
        jitter: float = (rng or random).uniform(0.0, d / 2)
        return d / 2 + jitter
