"""Is the gateway itself behind? Then a silent sensor proves nothing.

The silence check (alerts/health_device.py) compares the wall clock with when a device's last
reading was *processed*. When the gateway's own intake lags (a backlog in its queue, or its
event loop blocked), every device looks silent at once and a site would get hundreds of
`offline` alerts for healthy sensors. So the gateway watches its intake: the age of the oldest
message it is processing (time since it arrived), how many wait behind it, and how late its
1-second tick runs. When it falls behind it says so once (a `malfunction` alert on
`site: gateway, zone: intake, hazard: gateway`, and a log line) and stops calling devices
silent; once it has caught up it clears that alert and counts silence again from then on.

Blind spot: messages the broker holds back (its in-flight window towards the gateway) have not
arrived yet and are not seen here; mosquitto's `max_inflight_messages` bounds that backlog.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from alerts.health import SensorHealth
from alerts.lifecycle import AlertBook
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from rules.types import RuleKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """When the gateway counts as behind, and when as caught up again (hysteresis)."""

    behind_after_s: float = 10.0  # a third of the shortest silence limit (HealthPolicy.min_silence_s)
    caught_up_below_s: float = 2.0
    max_queue: int = 50_000  # messages waiting in the gateway's queue
    caught_up_queue: int = 1_000


@dataclass(frozen=True, slots=True)
class IntakeSample:
    """One look at the intake: `lag_s` = age of the oldest message in hand (or tick lateness)."""

    now_s: float
    lag_s: float
    queued: int


class IntakeWatch:
    """Turns intake samples into one malfunction alert per episode and pauses silence checks."""

    def __init__(
        self, book: AlertBook, health: SensorHealth, gateway_id: str, policy: IntakePolicy | None = None
    ) -> None:
        self.book = book
        self.health = health
        self.policy = policy or IntakePolicy()
        self.subject = AlertSubject("gateway", "intake", gateway_id, "gateway")
        self.behind = False
        self.episodes = 0
        self._worst_lag_s = 0.0

    def observe(self, sample: IntakeSample) -> list[AlertEvent]:
        p = self.policy
        if self.behind:
            self._worst_lag_s = max(self._worst_lag_s, sample.lag_s)
            if sample.lag_s < p.caught_up_below_s and sample.queued <= p.caught_up_queue:
                return self._caught_up(sample)
            return []
        if sample.lag_s > p.behind_after_s or sample.queued > p.max_queue:
            return self._fell_behind(sample)
        return []

    def _fell_behind(self, s: IntakeSample) -> list[AlertEvent]:
        self.behind, self._worst_lag_s = True, s.lag_s
        self.episodes += 1
        self.health.pause_silence()
        text = (
            f"gateway intake is behind: the oldest message in hand is {s.lag_s:.0f} s old, {s.queued} waiting; "
            "sensor-silence checks paused until it has caught up"
        )
        log.warning("%s", text)
        return self.book.raise_health(
            self.subject, RuleKind.OFFLINE, t_s=s.now_s, now_s=s.now_s, message=text, value=round(s.lag_s, 1),
            threshold=self.policy.behind_after_s, unit="s",
        )  # fmt: skip

    def _caught_up(self, s: IntakeSample) -> list[AlertEvent]:
        self.behind = False
        self.health.resume_silence(s.now_s)
        text = f"gateway intake caught up (at worst {self._worst_lag_s:.0f} s behind); sensor-silence checks resumed"
        log.warning("%s", text)
        return self.book.clear_health(self.subject, RuleKind.OFFLINE, t_s=s.now_s, now_s=s.now_s, message=text)
