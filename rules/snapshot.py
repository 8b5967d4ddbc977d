"""Engine state export for restart recovery (SPEC §6: a restart must not reset running STEL/TWA).

Format: an `.npz` archive (numpy, no pickle) holding every per-channel array of the live and
checkpoint states plus one JSON header (channels, site order, settings). Channel metadata
(profile group, sound flag) is recomputed from the registry on restore, so a snapshot stays
usable after a profile file changes; ring and bin sizes must match the engine's settings.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from rules.errors import ConfigError
from rules.state import meta_spec
from rules.types import ChannelKey, Hazard

if TYPE_CHECKING:
    from rules.engine import ExposureEngine

FORMAT = "oshmon-engine-2"


def dump(engine: ExposureEngine) -> bytes:
    live = engine.live
    n = live.size
    header = {
        "format": FORMAT,
        "channels": [[k.site, k.zone, k.device, str(k.hazard), k.worker] for k in engine.registry.keys[:n]],
        "sites": sorted(engine.sites.index, key=engine.sites.index.__getitem__),
        "site_max_t": engine.sites.max_t,
        "stats": engine.stats,
        "max_gap_s": engine.max_gap_s,
    }
    arrays: dict[str, Any] = {f"live.{k}": a[:n] for k, a in live.arrays.items() if k not in meta_spec()}
    for prefix, state in (("ck1", engine.ck1), ("ck2", engine.ck2)):
        arrays.update({f"{prefix}.{k}": a[:n] for k, a in state.arrays.items()})
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load(engine: ExposureEngine, data: bytes) -> None:
    """Fill a freshly built engine (same registry order expected: it must be empty)."""
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        header = json.loads(bytes(archive["header"]).decode())
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"engine snapshot unreadable: {exc}") from None
    if header.get("format") != FORMAT:
        raise ConfigError(f"engine snapshot format {header.get('format')!r} is not {FORMAT!r}")
    if len(engine.registry):
        raise ConfigError("an engine snapshot can only be restored into an empty engine")
    for name in header["sites"]:
        engine.sites.id_for(name)
    engine.sites.max_t = [float(x) for x in header["site_max_t"]]
    for site, zone, device, hazard, worker in header["channels"]:
        engine.registry.id_for(ChannelKey(site, zone, device, Hazard(hazard), worker))
    engine.register()
    n = len(header["channels"])
    for prefix, state in (("live", engine.live), ("ck1", engine.ck1), ("ck2", engine.ck2)):
        for name, arr in state.arrays.items():
            key = f"{prefix}.{name}"
            if key not in archive.files:
                continue
            saved = archive[key]
            if saved.shape[1:] != arr.shape[1:]:
                raise ConfigError(f"engine snapshot {key} has shape {saved.shape[1:]}, engine {arr.shape[1:]}: "
                                  "restore with the same reorder settings")  # fmt: skip
            arr[:n] = saved
    engine.stats.update({k: int(v) for k, v in header["stats"].items()})
