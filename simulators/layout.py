"""The simulated mine: sites, zones and the devices in them.

A zone's *role* (from its name: `face-*`, `return-*`, `workshop`, anything else is haulage)
decides which kinds of device it holds and how its air and noise behave. The layout depends
only on the `MineSpec`, never on the seed, so scenarios can name devices and zones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ZoneRole(StrEnum):
    FACE = "face"  # production face: cutting, drilling, blasting; dust, noise, methane
    RETURN = "return"  # return airway: collects what the faces give off
    HAULAGE = "haulage"  # adits, declines, drives: diesel traffic
    WORKSHOP = "workshop"  # underground workshop: machines, diesel engines under repair


class DeviceKind(StrEnum):
    GAS4 = "gd"  # fixed 4-gas detector (CH4, O2, CO, H2S)
    EXHAUST = "ed"  # fixed diesel-exhaust gas monitor (NO2, NO, SO2, CO2)
    DPM = "pd"  # diesel particulate (elemental carbon) monitor, reports in ug/m3
    DUST = "dd"  # respirable dust + crystalline silica monitor
    NOISE = "nd"  # fixed sound level meter: LAeq series and C-weighted peak
    PERSONAL_GAS = "pm"  # personal 4-gas monitor worn by a worker
    PERSONAL_NOISE = "pn"  # personal noise dosimeter worn by a worker


class Shape(StrEnum):
    """How a device puts its readings on the wire (SPEC §2.1)."""

    SINGLE = "single"  # {"t", "hazard", "value", "unit"}
    MULTI = "multi"  # {"t", "readings": [...]}, t as epoch seconds
    MULTI_RFC3339 = "multi-rfc3339"  # the same, t as an RFC 3339 string
    SERIES = "series"  # {"hazard", "unit", "t0", "dt", "values"} (+ a noise_peak single)
    SERIES_T = "series-t"  # {"hazard", "unit", "t": [...], "values"}


@dataclass(frozen=True, slots=True)
class Channel:
    """One hazard of a device: the unit it reports in and its display resolution."""

    hazard: str
    unit: str
    per_canonical: float  # wire value = canonical value * per_canonical
    decimals: int  # rounding of the wire value (resolution 10**-decimals)


@dataclass(frozen=True, slots=True)
class KindSpec:
    description: str
    shape: Shape
    channels: tuple[Channel, ...]
    personal: bool = False


_CH4 = Channel("ch4", "%vol", 1.0, 2)
_O2 = Channel("o2", "%vol", 1.0, 1)
_CO = Channel("co", "ppm", 1.0, 0)
_H2S = Channel("h2s", "ppm", 1.0, 1)
_NOISE = Channel("noise", "dBA", 1.0, 1)

KINDS: dict[DeviceKind, KindSpec] = {
    DeviceKind.GAS4: KindSpec("fixed 4-gas detector", Shape.MULTI, (_CH4, _O2, _CO, _H2S)),
    DeviceKind.EXHAUST: KindSpec(
        "diesel exhaust gas monitor",
        Shape.MULTI,
        (
            Channel("no2", "ppm", 1.0, 2),
            Channel("no", "ppm", 1.0, 1),
            Channel("so2", "ppm", 1.0, 2),
            Channel("co2", "ppm", 1.0, -1),
        ),
    ),
    DeviceKind.DPM: KindSpec("DPM monitor", Shape.SINGLE, (Channel("dpm", "ug/m3", 1000.0, 0),)),
    DeviceKind.DUST: KindSpec(
        "respirable dust monitor",
        Shape.SERIES,
        (Channel("respirable_dust", "mg/m3", 1.0, 2), Channel("silica", "mg/m3", 1.0, 3)),
    ),
    DeviceKind.NOISE: KindSpec("sound level meter", Shape.SERIES, (_NOISE, Channel("noise_peak", "dBC", 1.0, 1))),
    DeviceKind.PERSONAL_GAS: KindSpec(
        "personal 4-gas monitor", Shape.MULTI_RFC3339, (_CO, _H2S, _O2, _CH4), personal=True
    ),
    DeviceKind.PERSONAL_NOISE: KindSpec("personal noise dosimeter", Shape.SERIES_T, (_NOISE,), personal=True),
}

#: Fixed devices a zone of each role holds (each `devices_per_hazard` times).
ROLE_KINDS: dict[ZoneRole, tuple[DeviceKind, ...]] = {
    ZoneRole.FACE: (DeviceKind.GAS4, DeviceKind.EXHAUST, DeviceKind.DUST, DeviceKind.NOISE),
    ZoneRole.RETURN: (DeviceKind.GAS4, DeviceKind.EXHAUST, DeviceKind.DUST),
    ZoneRole.HAULAGE: (DeviceKind.GAS4, DeviceKind.EXHAUST, DeviceKind.DPM, DeviceKind.NOISE),
    ZoneRole.WORKSHOP: (DeviceKind.GAS4, DeviceKind.EXHAUST, DeviceKind.DPM, DeviceKind.NOISE),
}

DEFAULT_ZONES = ("north-adit", "face-1", "face-2", "return-1", "workshop")
_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # SPEC §2: one topic level
_WORKER_BASE = 1000  # worker ids look like w-1001, w-1002, ...


def zone_role(zone: str) -> ZoneRole:
    """The role a zone plays, from its name (`face-2` → face, `return-1` → return, ...)."""
    name = zone.lower()
    for role in (ZoneRole.FACE, ZoneRole.RETURN, ZoneRole.WORKSHOP):
        if name.startswith(role.value):
            return role
    return ZoneRole.HAULAGE


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated sensor. `index` is its position in the layout and seeds its randomness."""

    index: int
    site: str
    zone: str
    device: str
    kind: DeviceKind
    worker: str | None = None

    @property
    def role(self) -> ZoneRole:
        return zone_role(self.zone)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def hazards(self) -> tuple[str, ...]:
        return tuple(c.hazard for c in KINDS[self.kind].channels)

    def topic(self, prefix: str, leaf: str) -> str:
        """`P/{site}/{zone}/{device}/{leaf}` with leaf `data` or `status` (SPEC §2)."""
        return f"{prefix}/{self.site}/{self.zone}/{self.device}/{leaf}"


@dataclass(frozen=True, slots=True)
class MineSpec:
    """What to simulate: `sites` mines, each with `zones`; every zone holds `devices_per_hazard`
    devices of each kind its role calls for (`ROLE_KINDS`), and `workers_per_site` workers each
    wear a personal gas monitor and a noise dosimeter (assigned to faces first)."""

    sites: int = 1
    devices_per_hazard: int = 1
    workers_per_site: int = 2
    zones: tuple[str, ...] = DEFAULT_ZONES
    site_prefix: str = "kop"
    noise_sample_s: float = 10.0  # LAeq integration time of one noise value (SPEC: 1-10 s)
    dust_sample_s: float = 60.0  # averaging time of one dust value

    def __post_init__(self) -> None:
        if self.sites < 1 or self.devices_per_hazard < 1 or self.workers_per_site < 0:
            raise ValueError("MineSpec needs sites >= 1, devices_per_hazard >= 1, workers_per_site >= 0")
        if not self.zones or len(set(self.zones)) != len(self.zones):
            raise ValueError(f"MineSpec zones must be non-empty and distinct, got {self.zones!r}")
        for name in (*self.zones, f"{self.site_prefix}-{self.sites}"):
            if not _LEVEL.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid topic level ([A-Za-z0-9_.-]{{1,64}})")
        if not (0 < self.noise_sample_s <= 60 and 0 < self.dust_sample_s <= 3600):
            raise ValueError("noise_sample_s must be in (0, 60] and dust_sample_s in (0, 3600]")

    def site_names(self) -> tuple[str, ...]:
        return tuple(f"{self.site_prefix}-{i}" for i in range(1, self.sites + 1))

    def devices(self) -> tuple[Device, ...]:
        """Every device, site by site and zone by zone; device numbers are unique mine-wide."""
        counters = dict.fromkeys(DeviceKind, 0)
        out: list[Device] = []

        def add(site: str, zone: str, kind: DeviceKind, worker: str | None = None) -> None:
            counters[kind] += 1
            out.append(Device(len(out), site, zone, f"{kind.value}-{counters[kind]}", kind, worker))

        worker_no = _WORKER_BASE
        for site in self.site_names():
            for zone in self.zones:
                for kind in ROLE_KINDS[zone_role(zone)]:
                    for _ in range(self.devices_per_hazard):
                        add(site, zone, kind)
            for i in range(self.workers_per_site):
                worker_no += 1
                zone = self._worker_zones()[i % len(self.zones)]
                add(site, zone, DeviceKind.PERSONAL_GAS, f"w-{worker_no}")
                add(site, zone, DeviceKind.PERSONAL_NOISE, f"w-{worker_no}")
        return tuple(out)

    def _worker_zones(self) -> tuple[str, ...]:
        """Zones in the order workers are assigned to them: faces, workshop, haulage, returns."""
        order = (ZoneRole.FACE, ZoneRole.WORKSHOP, ZoneRole.HAULAGE, ZoneRole.RETURN)
        return tuple(sorted(self.zones, key=lambda z: order.index(zone_role(z))))
