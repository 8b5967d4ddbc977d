"""InfluxDB line protocol for the SPEC §4 measurements, built fast from the engine's arrays.

Syntax: `measurement[,tag=value...] field=value[,...] timestamp` (docs-v2
`write_protocols/line_protocol_reference.md`; tech-notes §7). Escaping: measurement `,` and space;
tag keys/values `,` `=` and space; string fields are double-quoted with `"` and `\\` escaped.
Tag values InfluxDB cannot carry (line breaks; a backslash at the end or before `,` `=` space)
are refused beforehand (`storage.records.tag_problem`). Empty tag values are left out (line
protocol has no empty tag). Floats are always written as floats (`repr`, never `1i`), so the
field type never conflicts; NaN/±Inf are never written. Times are whole milliseconds
(`precision=ms`).

Speed (tech-notes §4.4): each channel's measurement + sorted tag set + `value=` is escaped once and
cached (`PrefixCache`); per reading only the number and the time are formatted, from `.tolist()`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from alerts.types import AlertEvent
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch
from storage import records as rec

_ESC_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_ESC_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def escape_tag(text: str) -> str:
    """A tag key or value (also a field key) as line protocol writes it."""
    return text.translate(_ESC_TAG)


def string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def series_prefix(measurement: str, tags: Mapping[str, str | None]) -> str:
    """`measurement,k=v,...` with keys sorted (InfluxDB's own order) and empty tags left out."""
    parts = [measurement.translate(_ESC_MEASUREMENT)]
    parts += [f"{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v]
    return ",".join(parts)


def field_set(fields: Mapping[str, Any]) -> str:
    """`k=v,...`: None and non-finite numbers are left out; bools as true/false; every number a float."""
    out = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = string_field(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                continue
            text = repr(number)
        out.append(f"{escape_tag(key)}={text}")
    return ",".join(out)


def channel_tags(key: ChannelKey) -> dict[str, str | None]:
    return {
        "site": key.site, "zone": key.zone, "device": key.device, "hazard": str(key.hazard),
        "worker": key.worker,
    }  # fmt: skip


class PrefixCache:
    """`reading,<sorted tags> value=` per channel key, escaped once."""

    def __init__(self) -> None:
        self._prefix: dict[ChannelKey, str] = {}

    def __call__(self, key: ChannelKey) -> str:
        found = self._prefix.get(key)
        if found is None:
            found = self._prefix[key] = series_prefix("reading", channel_tags(key)) + " value="
        return found


def reading_lines(
    keys: Sequence[ChannelKey], batch: ReadingBatch, prefixes: PrefixCache, chunk: int
) -> Iterator[list[str]]:
    """Lines of the (already screened) batch, `chunk` at a time."""
    uniq, inverse = rec.channels_used(batch.channel, len(keys))
    table = [prefixes(keys[c]) for c in uniq.tolist()]
    t_ms = np.rint(batch.t_s * 1000.0).astype(np.int64)
    for start in range(0, len(batch), chunk):
        stop = start + chunk
        pre = list(map(table.__getitem__, inverse[start:stop].tolist()))
        values, times = batch.value[start:stop].tolist(), t_ms[start:stop].tolist()
        yield [f"{p}{v!r} {t}" for p, v, t in zip(pre, values, times, strict=True)]


def exposure_line(r: ExposureRecord) -> str:
    tags = {**channel_tags(r.key), "shift": r.shift}
    fields = rec.exposure_fields(r)
    fields.update({rec.limit_field(k): v for k, v in sorted(r.limits.items())})
    return f"{series_prefix('exposure', tags)} {field_set(fields)} {rec.to_ms(r.shift_start_s)}"


def alert_line(e: AlertEvent) -> str:
    tags = {
        "site": e.site, "zone": e.zone, "device": e.device, "hazard": e.hazard, "worker": e.worker,
        "rule": str(e.rule), "severity": str(e.severity), "event": str(e.event),
        "audit_key": rec.audit_key(e.audit_chain, e.audit_seq) or None,
    }  # fmt: skip
    return f"{series_prefix('alert', tags)} {field_set(rec.alert_fields(e))} {rec.to_ms(e.t_s)}"
