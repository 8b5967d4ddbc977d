"""Hazards measured but not judged: a `not_judged` configuration alert per site and hazard.

A reading of a hazard for which the site's limit profile has no limit is stored, but no rule can
raise an alarm on it. Silence would look like safety (issue 13: methane at 1.76 %vol under `eu`
raised nothing), so the first reading of each such (site, hazard) raises one `malfunction` alert
"CH4 readings from kop-1 are not judged: profile eu has no ch4 limit". It stays open (and
escalates until acknowledged) while the configuration is unchanged; at start-up, alerts that a
new configuration resolves are cleared. The alert's subject is `site / profile / <profile> /
hazard`, so its retained topic is `P/{site}/alarms/profile/{profile}/{hazard}/not_judged`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping

from alerts.lifecycle import AlertBook
from alerts.messages import not_judged_message
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from rules.profiles import ProfileBook, SiteConfig, unjudged_hazards
from rules.types import ChannelRegistry, Hazard, RuleKind

log = logging.getLogger(__name__)

#: Zone of a not_judged alert's subject (a topic level: SPEC §2).
CONFIG_ZONE = "profile"
_NOT_TOPIC = re.compile(r"[^A-Za-z0-9_.-]")


def profile_level(profile: str) -> str:
    """A profile name as one topic level (SPEC §2: `[A-Za-z0-9_.-]{1,64}`)."""
    return _NOT_TOPIC.sub("_", profile)[:64] or "_"


class CoverageWatch:
    """Checks each new (site, hazard) of the channel registry against the site's profile."""

    def __init__(self, book: ProfileBook, profile_of: Callable[[str], str]) -> None:
        self.book = book
        self.profile_of = profile_of
        self._seen_channels = 0
        self._checked: set[tuple[str, Hazard]] = set()

    def check(
        self,
        registry: ChannelRegistry,
        alerts: AlertBook,
        now_s: float,
        t_of: Callable[[int], float] | None = None,
        upto: int | None = None,
    ) -> list[AlertEvent]:
        """`not_judged` alerts for (site, hazard) pairs first measured since the last call, among
        the channels below `upto` (default: all); the event time is `t_of(channel)` (the
        reading's event time), else `now_s`."""
        events: list[AlertEvent] = []
        first, end = self._seen_channels, len(registry) if upto is None else min(upto, len(registry))
        for c, key in enumerate(registry.keys[first:end], start=first):
            pair = (key.site, key.hazard)
            if pair in self._checked:
                continue
            self._checked.add(pair)
            profile = self.profile_of(key.site)
            if self.book.profile(profile).judges(key.hazard):
                continue
            subject = AlertSubject(key.site, CONFIG_ZONE, profile_level(profile), str(key.hazard))
            message = not_judged_message(str(key.hazard), key.site, profile)
            t_s = t_of(c) if t_of is not None else now_s
            raised = alerts.raise_health(
                subject, RuleKind.NOT_JUDGED, t_s=t_s if math.isfinite(t_s) else now_s, now_s=now_s,
                message=message, profile=profile,
            )  # fmt: skip
            log.info("%s%s", message, "" if raised else " (its alert is open already)")
            events += raised
        self._seen_channels = max(first, end)
        return events

    def reconcile(self, alerts: AlertBook, now_s: float) -> list[AlertEvent]:
        """Clear open `not_judged` alerts the current configuration resolves (at start-up)."""
        events: list[AlertEvent] = []
        for a in alerts.open_alerts():
            if a.rule is not RuleKind.NOT_JUDGED:
                continue
            sub = a.subject
            profile = self.profile_of(sub.site)
            try:
                judged = self.book.profile(profile).judges(Hazard(sub.hazard))
            except ValueError:
                continue
            if not judged and profile_level(profile) == sub.device:
                continue  # still true: it stays open
            text = (
                f"{sub.hazard} readings from {sub.site} are judged now: profile {profile} has {sub.hazard} limits"
                if judged
                else f"{sub.site} uses profile {profile} now, which has no {sub.hazard} limit either: "
                "its own not_judged alert follows the next reading"
            )
            events += alerts.clear_health(sub, RuleKind.NOT_JUDGED, t_s=now_s, now_s=now_s, message=text)
        return events


def log_site_profiles(book: ProfileBook, default_profile: str, sites: Mapping[str, SiteConfig]) -> list[str]:
    """One start-up line per configured site (and the default): its profile and what it leaves
    unjudged (a warning when it leaves any). Returned as well as logged."""
    lines = []
    for site, profile in [*((s, c.profile or default_profile) for s, c in sorted(sites.items())),
                          ("every other site", default_profile)]:  # fmt: skip
        missing = unjudged_hazards(book, profile)
        line = f"{site}: limit profile {profile}" + (
            f"; no limits for {', '.join(missing)} (a not_judged alert when measured)" if missing else ""
        )
        lines.append(line)
        (log.warning if missing else log.info)("%s", line)
    return lines
