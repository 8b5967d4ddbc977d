"""The snapshot the page renders: alarms, device health and values, personal monitors, events.

One JSON document, pushed whole on every change (alarms are few; a wall screen re-renders it in
milliseconds), so a browser that reconnects is never out of step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from board.live import StoreView
from board.state import BoardState

MAX_EVENTS_SHOWN = 200


@dataclass(slots=True)
class SiteInfo:
    tz: str
    profile: str


@dataclass(slots=True)
class Snapshot:
    state: BoardState
    store: StoreView
    site_info: Callable[[str], SiteInfo]
    clock: Callable[[], float] = time.time

    def __call__(self) -> dict[str, Any]:
        st = self.state
        sites = sorted(st.sites() | {c["site"] for c in self.store.channels})
        return {
            "now_s": self.clock(),
            "connected": st.connected,
            "disconnected_since_s": st.disconnected_since,
            "store_error": self.store.error,
            "sites": [{"site": s, "tz": self.site_info(s).tz, "profile": self.site_info(s).profile} for s in sites],
            "alarms": st.active_alarms(),
            "statuses": [{"site": k[0], "zone": k[1], "device": k[2], **v} for k, v in sorted(st.statuses.items())],
            "channels": self.store.channels,
            "monitors": self.store.monitors,
            "events": [_event(e) for e in list(st.events)[:MAX_EVENTS_SHOWN]],
        }


def _event(e: dict[str, Any]) -> dict[str, Any]:
    keys = ("t", "event", "severity", "rule", "site", "zone", "device", "hazard", "worker", "value", "unit",
            "message", "by", "note", "alert_id", "signed", "unsigned_reason")  # fmt: skip
    return {k: e.get(k) for k in keys}
