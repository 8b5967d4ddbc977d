"""The gateway's own output topics are the gateway's: it watches them (issue 15 point 2).

The gateway subscribes to `P/{site}/alarms/#` and `P/{site}/alerts` of the sites it serves.

- **Retained alarm states.** Each publication of the gateway is remembered as an expected echo
  (per topic, in order). A message that is not such an echo was published by someone else: if
  it differs from the state the gateway last published on that topic (or, after a restart, from
  the open alert the topic belongs to), the gateway publishes its state again (retained; a
  zero-length message when no alert is open there) and raises a `malfunction` alert (rule
  `integrity`, zone `gateway`, device `alarms`, hazard `gateway`) naming the topic. An empty
  retained message can therefore no longer hide a live alarm from reconnecting boards, and a
  forged retained alarm is wiped. A retained copy of the gateway's own older state (the same
  alert id, seen again after a restart) is refreshed quietly, one of an alert it has cleared
  wiped quietly.
- **Alert events.** An event the gateway did not seal and publish (alerts/signed.py) is
  dead-lettered with the reason and raises the same kind of alert (device `alerts`). The
  gateway's own events come back as echoes and are recognised by their audit chain position.

Loops cannot form: the gateway's re-publications are themselves expected echoes, and its alerts
are signed. Each integrity alert clears after `INTEGRITY_CLEAR_S` without a new incident.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from alerts.lifecycle import AlertBook
from alerts.signed import RecentLinks, unsigned_reason
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from gateway.deadletter import DeadLetter
from gateway.mqtt import InboundMessage
from rules.types import RuleKind

INTEGRITY_CLEAR_S = 600.0
MAX_ECHOES_PER_TOPIC = 64  # publications of one topic in flight at once (far more than ever seen)
INTEGRITY = RuleKind.INTEGRITY


@dataclass(slots=True)
class WatchResult:
    republish: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, retained payload)
    dead: list[DeadLetter] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)


class OwnTopics:
    """See the module docstring. Not thread-safe: the service calls it from its one task."""

    def __init__(self, prefix: str, chain: str, book: AlertBook) -> None:
        self.prefix, self.chain, self.book = prefix, chain, book
        self.links = RecentLinks()
        self._last: dict[str, bytes] = {}  # topic -> retained state the gateway last published
        self._echo: dict[str, deque[bytes]] = {}
        self._incident_s: dict[AlertSubject, float] = {}

    # -- what the gateway publishes ----------------------------------------------------------------
    def published_event(self, ev: AlertEvent) -> None:
        if ev.audit_chain is not None and ev.audit_seq is not None and ev.hash is not None:
            self.links.add(ev.audit_chain, ev.audit_seq, ev.hash)

    def published_state(self, topic: str, payload: bytes) -> None:
        self._last[topic] = payload
        self._echo.setdefault(topic, deque(maxlen=MAX_ECHOES_PER_TOPIC)).append(payload)

    # -- what comes back ---------------------------------------------------------------------------
    def is_own_topic(self, topic: str) -> bool:
        parts = topic.split("/")
        head = self.prefix.split("/")
        rest = parts[len(head) :]
        if parts[: len(head)] != head or len(rest) < 2:
            return False
        return (len(rest) == 2 and rest[1] == "alerts") or (len(rest) == 6 and rest[1] == "alarms")

    def check(self, msgs: Sequence[InboundMessage], now_s: float) -> WatchResult:
        out = WatchResult()
        for m in msgs:
            site = m.topic[len(self.prefix) + 1 :].split("/", 1)[0]
            if m.topic.endswith("/alerts"):
                self._check_event(m, site, now_s, out)
            else:
                self._check_state(m, site, now_s, out)
        out.events += self._quiet_clears(now_s)
        return out

    def _check_state(self, m: InboundMessage, site: str, now_s: float, out: WatchResult) -> None:
        if self._is_echo(m.topic, m.payload):
            if not m.payload and self._last.get(m.topic) == b"":
                self._last.pop(m.topic, None)  # cleared and confirmed: nothing left to guard
                self._echo.pop(m.topic, None)
            return
        expected, quiet = self._expected(m.topic, m.payload)
        if m.payload == expected:
            self._last[m.topic] = expected
            return
        self.published_state(m.topic, expected)
        out.republish.append((m.topic, expected))
        if not quiet:
            what = "cleared" if not m.payload else "overwritten"
            text = f"Retained alarm topic {m.topic} was {what} by someone else; the gateway restored its state"
            out.events += self._incident(site, "alarms", text, now_s)

    def _is_echo(self, topic: str, payload: bytes) -> bool:
        pending = self._echo.get(topic)
        if not pending or payload not in pending:
            return False
        while pending.popleft() != payload:  # older ones were overtaken (MQTT keeps order per topic)
            pass
        return True

    def _expected(self, topic: str, payload: bytes) -> tuple[bytes, bool]:
        """The state the topic must hold, and whether a difference is the gateway's own stale copy."""
        if topic in self._last:
            return self._last[topic], False
        current = self.book.state_on_topic(topic[len(self.prefix) + 1 :])  # after a restart
        theirs = _alert_id(payload)
        if current is not None:
            return current, theirs is not None and theirs == _alert_id(current)
        return b"", theirs is not None and self.book.knows_alert(theirs)

    def _check_event(self, m: InboundMessage, site: str, now_s: float, out: WatchResult) -> None:
        try:
            doc = orjson.loads(m.payload)
            reason = unsigned_reason(doc, self.links) if isinstance(doc, dict) else "not a JSON object"
        except orjson.JSONDecodeError:
            reason = "not JSON"
        if not reason:
            return
        error = f"alert event not published by this gateway ({reason}): ignored; check who can publish on {m.topic}"
        out.dead.append(DeadLetter(m.topic, error, m.payload, m.received_s))
        text = f"An alert event the gateway did not sign appeared on {m.topic} ({reason})"
        out.events += self._incident(site, "alerts", text, now_s)

    # -- the integrity alert -----------------------------------------------------------------------
    def _incident(self, site: str, what: str, text: str, now_s: float) -> list[AlertEvent]:
        subject = AlertSubject(site, "gateway", what, "gateway", None)
        self._incident_s[subject] = now_s
        n = self.book.open_alert(subject, INTEGRITY)
        count = 1.0 if n is None or n.value is None else n.value + 1.0
        return self.book.raise_health(subject, INTEGRITY, t_s=now_s, now_s=now_s, message=text, value=count,
                                      unit="incidents")  # fmt: skip

    def _quiet_clears(self, now_s: float) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for subject, t in list(self._incident_s.items()):
            if now_s - t >= INTEGRITY_CLEAR_S:
                del self._incident_s[subject]
                text = f"no tampering with {subject.device} of site {subject.site} for {INTEGRITY_CLEAR_S / 60:.0f} min"
                events += self.book.clear_health(subject, INTEGRITY, t_s=now_s, now_s=now_s, message=text)
        return events


def _alert_id(payload: bytes) -> str | None:
    try:
        doc = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return None
    aid = doc.get("alert_id") if isinstance(doc, dict) else None
    return aid if isinstance(aid, str) else None
