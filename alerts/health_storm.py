"""Alert storms: many devices of one site failing together become one site-level alert.

20,000 devices falling silent at once (a site's network or power failing, or a flood of one-shot
device ids) must not become 20,000 `offline` alerts that bury a real alarm. Per site, once
`storm_devices` devices went offline within `storm_window_s` (or that many at once), further
offline devices of the site are folded into one `malfunction` alert: rule `offline`, zone
`gateway`, device `devices`, hazard `device` (retained topic
`P/{site}/alarms/gateway/devices/device/offline`). Its value is the number of devices in it, its
message names the count and the first ids, and its events list the ids in `devices` (at most
`alerts.state.MAX_LISTED_MEMBERS`). A member that reports again leaves the group without an
event; the group alert clears with its last member. Membership is kept in the alert book, so it
survives a restart with the checkpoint.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from alerts.lifecycle import AlertBook
from alerts.state import DEVICE_HAZARD, AlertSubject
from alerts.types import AlertEvent
from rules.types import RuleKind

GROUP_ZONE = "gateway"
GROUP_DEVICE = "devices"
NAMED_IN_MESSAGE = 10  # ids named in the message; the event's `devices` has the rest
OFFLINE = RuleKind.OFFLINE


def group_subject(site: str) -> AlertSubject:
    return AlertSubject(site, GROUP_ZONE, GROUP_DEVICE, DEVICE_HAZARD, None)


def member_id(zone: str, device: str) -> str:
    return f"{zone}/{device}"


def group_message(site: str, members: Sequence[str]) -> str:
    n = len(members)
    named = ", ".join(members[:NAMED_IN_MESSAGE])
    more = f" and {n - NAMED_IN_MESSAGE:,} more" if n > NAMED_IN_MESSAGE else ""
    return (
        f"{n:,} devices of site {site} went offline or silent together: {named}{more} "
        "(site network, power or a flood of device ids?); devices that fail later join this alert"
    )


class OfflineGroups:
    """Decides when offline devices of a site are folded into the site's group alert."""

    def __init__(self, book: AlertBook, storm_devices: int, storm_window_s: float) -> None:
        self.book = book
        self.storm_devices, self.storm_window_s = storm_devices, storm_window_s
        self._recent: dict[str, deque[float]] = {}  # per site: times of individual offline raises
        self._subjects: dict[str, AlertSubject] = {}  # per site: its group alert's subject (made once)
        # Group alerts rebuilt from the store's alert log alone have no member list (the store keeps
        # the message, not the ids): they clear with the first reading from their site.
        self.lost: set[str] = {
            a.subject.site for a in book.open_alerts()
            if a.rule is OFFLINE and a.subject == group_subject(a.subject.site)
            and not book.group_members(a.subject, OFFLINE)
        }  # fmt: skip

    def fold_now(self, site: str, n: int, now_s: float) -> bool:
        """Should `n` devices of `site` going offline now join the site's group alert? (Counts them
        as individual raises when not.)"""
        if self.book.is_open(group_subject(site), OFFLINE):
            return True
        recent = self._recent.setdefault(site, deque())
        while recent and recent[0] < now_s - self.storm_window_s:
            recent.popleft()
        if len(recent) + n >= self.storm_devices:
            recent.clear()
            return True
        recent.extend([now_s] * n)
        return False

    def fold(self, site: str, members: Sequence[str], t_s: float, now_s: float) -> list[AlertEvent]:
        """Add `members` (`zone/device` ids) to the site's group alert, opening it if needed."""
        return self.book.raise_group(
            group_subject(site), OFFLINE, members, t_s=t_s, now_s=now_s, message=lambda m: group_message(site, m)
        )

    def is_member(self, site: str, zone: str, device: str) -> bool:
        subject = self._subjects.get(site)
        if subject is None:
            subject = self._subjects[site] = group_subject(site)
        members = self.book.group_members(subject, OFFLINE)
        return bool(members) and member_id(zone, device) in members

    def back(self, site: str, zone: str, device: str, t_s: float, now_s: float) -> list[AlertEvent]:
        """A member reports again: it leaves the group; the last one out clears the alert."""
        text = f"every device of site {site} that went offline together reports again"
        member = member_id(zone, device)
        return self.book.leave_group(group_subject(site), OFFLINE, member, t_s=t_s, now_s=now_s, message=text)

    def recovered(self, site: str, t_s: float, now_s: float) -> list[AlertEvent]:
        """A device of `site` reports while its group alert has no member list: clear it (devices
        still silent are detected again, and grouped again if many)."""
        self.lost.discard(site)
        text = (
            f"devices of site {site} report again (the member list was lost at a restart: "
            "silent ones are checked again)"
        )
        return self.book.clear_health(group_subject(site), OFFLINE, t_s=t_s, now_s=now_s, message=text)
