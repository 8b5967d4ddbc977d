"""What the board knows from the broker: active alarms (retained states), the last 24 h of alert
events, and each device's reported status. Fed by `MqttWatch` (gateway/mqtt.py) on the event loop.

Active alarms come only from the retained `P/{site}/alarms/...` states the gateway owns: a new
MQTT session redelivers all of them, so on every (re)connection the board forgets its alarms
and rebuilds them from what the broker hands over — an alarm cleared while the board or the
broker was down never stays on the wall screen.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

EVENT_WINDOW_S = 24 * 3600.0
ALARMS, OTHER = "alarms", "other"  # what changed: alarms go to the page first and alone (latency)
MAX_EVENTS = 5000  # the 24-h list is capped: a storm must not exhaust the board's memory
SEVERITY_RANK = {"critical": 0, "alarm": 1, "warning": 2, "malfunction": 3}
#: The fields of an alarm the API returns (SPEC §5: those of the retained state + acknowledged_by).
ALARM_FIELDS = (
    "alert_id", "site", "zone", "device", "worker", "hazard", "rule", "severity", "value", "threshold",
    "unit", "since", "acknowledged_by", "action", "limit_source", "message",
)  # fmt: skip
EXTRA_FIELDS = ("state", "peak", "ack_note", "escalations", "profile", "t")


@dataclass(slots=True)
class BoardState:
    prefix: str
    clock: Callable[[], float] = time.time
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # alarm topic → state
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    statuses: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    connected: bool = False
    disconnected_since: float | None = None
    version: int = 0
    _listeners: dict[asyncio.Queue[int], set[str]] = field(default_factory=dict)  # → kinds changed since
    verify: Callable[[dict[str, Any]], None] | None = None  # checks a live event's seal (board/verify.py)

    # -- MQTT side --------------------------------------------------------------------------------
    def on_connection(self, up: bool) -> None:
        if up:
            self.alarms.clear()  # the broker now redelivers every retained alarm state
            self.connected, self.disconnected_since = True, None
        elif self.connected or self.disconnected_since is None:
            self.connected, self.disconnected_since = False, self.clock()
        self._changed(ALARMS)

    def on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != self.prefix:
            return
        if parts[2] == "alarms" and len(parts) == 7:
            self._on_alarm(topic, payload)
            self._changed(ALARMS)
        elif parts[2] == "alerts" and len(parts) == 3 and not retained:
            self._on_event(payload)
            self._changed(OTHER)
        elif len(parts) == 5 and parts[4] == "status":
            self._on_status(parts[1], parts[2], parts[3], payload)
            self._changed(OTHER)

    def _on_alarm(self, topic: str, payload: bytes) -> None:
        if not payload:
            self.alarms.pop(topic, None)
            return
        doc = _json(payload)
        if doc is None or not isinstance(doc.get("alert_id"), str):
            return
        self.alarms[topic] = {k: doc.get(k) for k in (*ALARM_FIELDS, *EXTRA_FIELDS)}

    def _on_event(self, payload: bytes) -> None:
        doc = _json(payload)
        if doc is None or not isinstance(doc.get("alert_id"), str):
            return
        # Without a verifier only the presence of a seal is known; board/verify.py checks it
        # against the gateway's record in the store (alerts.signed.is_signed_by_gateway).
        doc["signed"] = bool(doc.get("hash")) and bool(doc.get("audit_chain"))
        if self.verify is not None and doc["signed"]:
            self.verify(doc)
        doc["received_s"] = self.clock()
        self.events.appendleft(doc)
        self._expire()

    def _on_status(self, site: str, zone: str, device: str, payload: bytes) -> None:
        doc = _json(payload) if payload else None
        if doc is None:
            self.statuses.pop((site, zone, device), None)
            return
        self.statuses[(site, zone, device)] = {"state": str(doc.get("state", "")), "received_s": self.clock(),
                                               "calibrated_on": doc.get("calibrated_on")}  # fmt: skip

    def seed_events(self, rows: list[dict[str, Any]]) -> None:
        """Events from the store at start-up (newest first), so the 24-h list is not empty."""
        for row in rows[:MAX_EVENTS]:
            self.events.append({**row, "signed": bool(row.get("hash")), "received_s": None})

    def _expire(self) -> None:
        horizon = self.clock() - EVENT_WINDOW_S
        while self.events and (self.events[-1].get("received_s") or horizon) < horizon:
            self.events.pop()

    # -- readers ----------------------------------------------------------------------------------
    def active_alarms(self, site: str | None = None) -> list[dict[str, Any]]:
        """Sorted by severity, then newest first."""
        rows = [a for a in self.alarms.values() if site is None or a.get("site") == site]
        rows.sort(key=lambda a: str(a.get("since") or ""), reverse=True)
        rows.sort(key=lambda a: SEVERITY_RANK.get(str(a.get("severity")), 9))
        return rows

    def alarm_by_id(self, alert_id: str) -> dict[str, Any] | None:
        return next((a for a in self.alarms.values() if a.get("alert_id") == alert_id), None)

    def sites(self) -> set[str]:
        found = {str(a.get("site")) for a in self.alarms.values()}
        found |= {site for site, _z, _d in self.statuses}
        return found | {str(e.get("site")) for e in self.events if e.get("site")}

    # -- push to browsers -------------------------------------------------------------------------
    def listen(self) -> asyncio.Queue[int]:
        q: asyncio.Queue[int] = asyncio.Queue(maxsize=1)  # coalesced: "something changed"
        self._listeners[q] = set()
        return q

    def unlisten(self, q: asyncio.Queue[int]) -> None:
        self._listeners.pop(q, None)

    def take_changes(self, q: asyncio.Queue[int]) -> set[str]:
        """What changed since this listener last looked: {"alarms"} and/or {"other"}."""
        kinds = self._listeners.get(q, set())
        taken = set(kinds)
        kinds.clear()
        return taken

    def touch(self) -> None:
        """Something the page shows changed outside MQTT (the store view was refreshed)."""
        self._changed(OTHER)

    def _changed(self, kind: str) -> None:
        self.version += 1
        for q, kinds in self._listeners.items():
            kinds.add(kind)
            if q.empty():
                q.put_nowait(self.version)


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None
