"""Sign-in throttling: after `MAX_FAILURES` failed sign-ins within `WINDOW_S` from one client or
for one user name, further attempts are refused (HTTP 429) until the window has passed. Guessing
a password is then slow, and a locked-out officer waits minutes, not forever."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_S = 300.0
MAX_TRACKED = 10_000  # keys remembered at most (a flood of made-up names must not fill memory)


@dataclass(slots=True)
class LoginThrottle:
    clock: Callable[[], float] = time.monotonic
    max_failures: int = MAX_FAILURES
    window_s: float = WINDOW_S
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _keys(self, client: str, name: str) -> tuple[str, str]:
        return f"client:{client}", f"user:{name.casefold()}"

    def blocked_for(self, client: str, name: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self.clock()
        wait = 0.0
        for key in self._keys(client, name):
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.max_failures:
                wait = max(wait, self.window_s - (now - times[0]))
        return wait

    def failed(self, client: str, name: str) -> None:
        if len(self._failures) > MAX_TRACKED:
            self._failures.clear()
        now = self.clock()
        for key in self._keys(client, name):
            self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now)

    def succeeded(self, client: str, name: str) -> None:
        for key in self._keys(client, name):
            self._failures.pop(key, None)
