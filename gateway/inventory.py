"""Bounded channels: a per-site inventory, so a flood of device ids cannot exhaust the gateway.

Every channel (site, zone, device, hazard, worker) costs engine, health and registry state for
as long as the gateway runs (docs/benchmarks.md: about 4.5 KiB of engine state, a few KiB more in
Python). A site's channels are therefore bounded:

- a site with a `devices` list in its configuration (`[sites.NAME] devices = [...]`) accepts
  readings only from those devices;
- otherwise channels are learned as they appear, up to `max_channels` of the site
  (`[sites.NAME] max_channels`) or `OSH_MAX_CHANNELS_PER_SITE` (default 10,000);
- at most `OSH_MAX_SITES` (default 100) sites are learned that are not configured;
- at most `OSH_MAX_CHANNELS` (default 100,000) channels in all.

A reading of a channel beyond the inventory is refused whole with a dead letter saying why
(counted per site); the gateway raises one `malfunction` alert per site about it (rule
`capacity`, zone `gateway`, device `inventory`, hazard `gateway`). Channels already known keep
working. Raising the cap needs a restart; the cap is checked before any state is allocated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alerts.lifecycle import AlertBook
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from rules.errors import PayloadError
from rules.types import ChannelKey, ChannelRegistry, RuleKind

if TYPE_CHECKING:  # gateway/config.py imports this module's defaults
    from gateway.config import Settings

#: Default channels per site: 10,000 channels take about 45 MB of engine state (4.5 KiB each) plus
#: the registry and health tables; a large mine has a few thousand fixed and personal sensors.
DEFAULT_MAX_CHANNELS_PER_SITE = 10_000
#: Default number of sites learned without configuration (configured sites are always served).
DEFAULT_MAX_SITES = 100
#: Default channels of the whole gateway: about 770 MiB resident (bench.cardinality); split sites
#: between gateways (OSH_SERVE_SITES) beyond it.
DEFAULT_MAX_CHANNELS = 100_000


@dataclass(frozen=True, slots=True)
class SiteInventory:
    """What one site may have: a fixed device list (None: learned) and a channel cap."""

    devices: frozenset[str] | None
    max_channels: int


def inventory_for(settings: Settings, registry: ChannelRegistry) -> ChannelInventory:
    """The inventory the configuration describes (`[sites.NAME] devices / max_channels`, `OSH_MAX_*`)."""
    sites = {
        name: SiteInventory(
            frozenset(cfg.devices) if cfg.devices is not None else None,
            cfg.max_channels or settings.max_channels_per_site,
        )
        for name, cfg in settings.sites.items()
    }
    return ChannelInventory(registry, sites, settings.max_channels_per_site, settings.max_sites, settings.max_channels)


class ChannelInventory:
    """`id_for(key)` like `ChannelRegistry.id_for`, but refuses channels beyond the inventory."""

    def __init__(
        self,
        registry: ChannelRegistry,
        sites: Mapping[str, SiteInventory],
        max_channels_per_site: int = DEFAULT_MAX_CHANNELS_PER_SITE,
        max_sites: int = DEFAULT_MAX_SITES,
        max_channels: int = DEFAULT_MAX_CHANNELS,
    ) -> None:
        self.registry = registry
        self.max_channels = max_channels
        self.sites = dict(sites)
        self.max_channels_per_site, self.max_sites = max_channels_per_site, max_sites
        self.channels: Counter[str] = Counter()  # channels known per site
        self.refused: Counter[str] = Counter()  # messages refused per site (since start)
        self._counted = 0
        self._devices: set[tuple[str, str, str]] = set()

    def _sync(self) -> None:
        """Count channels the registry learned elsewhere (the restart replay)."""
        keys = self.registry.keys
        for key in keys[self._counted :]:
            self.channels[key.site] += 1
            self._devices.add((key.site, key.zone, key.device))
        self._counted = len(keys)

    def admit_device(self, site: str, zone: str, device: str) -> None:
        """A status message: refused (PayloadError) for a device the inventory has no room for."""
        self._sync()
        if (site, zone, device) in self._devices:
            return
        problem = self._problem(site, device, f"status of a new device ({zone}/{device})")
        if problem:
            self.refused[site] += 1
            raise PayloadError(problem)
        self._devices.add((site, zone, device))
        self.channels[site] += 1  # a device known by its status only takes a place too

    def id_for(self, key: ChannelKey) -> int:
        found = self.registry.get(key)
        if found is not None:
            return found
        self._sync()
        problem = self._problem(
            key.site, key.device, f"reading of a new channel ({key.zone}/{key.device} {key.hazard})"
        )
        if problem:
            self.refused[key.site] += 1
            raise PayloadError(problem)
        cid = self.registry.id_for(key)
        self._sync()
        return cid

    def _problem(self, site_name: str, device: str, what: str) -> str:
        site = self.sites.get(site_name)
        if site is None and site_name not in self.channels and self._learned_sites() >= self.max_sites:
            return (
                f"site {site_name!r} refused: already serving {self.max_sites} sites that are not configured "
                "(OSH_MAX_SITES); configure the site ([sites.NAME]) or raise the limit"
            )
        if site is not None and site.devices is not None and device not in site.devices:
            return (
                f"device {device!r} is not in the inventory of site {site_name!r} "
                f"([sites.{site_name}] devices); add it there if it is a real sensor"
            )
        if self.channels.total() >= self.max_channels:
            return (
                f"the gateway already has {self.max_channels:,} channels (OSH_MAX_CHANNELS); {what} of site "
                f"{site_name!r} refused: split the sites between gateways (OSH_SERVE_SITES) or raise the limit"
            )
        cap = self.cap_of(site_name)
        if self.channels[site_name] >= cap:
            return (
                f"site {site_name!r} already has {cap:,} channels (OSH_MAX_CHANNELS_PER_SITE / "
                f"[sites.{site_name}] max_channels); {what} refused"
            )
        return ""

    def cap_of(self, site: str) -> int:
        cfg = self.sites.get(site)
        return cfg.max_channels if cfg is not None else self.max_channels_per_site

    def _learned_sites(self) -> int:
        return sum(1 for s in self.channels if s not in self.sites)

    def take_refused(self) -> dict[str, int]:
        """Sites with refusals, and their totals since start (for the capacity alert)."""
        return {s: n for s, n in self.refused.items() if n}


CAPACITY_CLEAR_S = 600.0  # the capacity alert clears after this long without a refusal


def capacity_subject(site: str) -> AlertSubject:
    return AlertSubject(site, "gateway", "inventory", "gateway", None)


class CapacityAlerts:
    """One `malfunction` alert per site while readings of channels beyond its inventory come in."""

    def __init__(self, inventory: ChannelInventory, book: AlertBook) -> None:
        self.inventory, self.book = inventory, book
        self._seen: dict[str, tuple[int, float]] = {}  # site -> (refusals, wall time of the last new one)

    def check(self, now_s: float) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for site, n in self.inventory.take_refused().items():
            before, since = self._seen.get(site, (0, now_s))
            subject = capacity_subject(site)
            if n > before:
                self._seen[site] = (n, now_s)
                text = (
                    f"Readings of {n:,} message(s) refused at site {site}: channels beyond its inventory "
                    f"(at most {self.inventory.cap_of(site):,} channels, or its configured device list); "
                    "see the dead letters for the device ids"
                )
                events += self.book.raise_health(subject, RuleKind.CAPACITY, t_s=now_s, now_s=now_s, message=text,
                                                 value=float(n), unit="messages")  # fmt: skip
            elif now_s - since >= CAPACITY_CLEAR_S and self.book.is_open(subject, RuleKind.CAPACITY):
                text = f"no readings refused at site {site} for {CAPACITY_CLEAR_S / 60:.0f} min"
                events += self.book.clear_health(subject, RuleKind.CAPACITY, t_s=now_s, now_s=now_s, message=text)
        return events
