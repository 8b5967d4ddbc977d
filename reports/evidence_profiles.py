"""The limit profiles an evidence bundle carries: every profile its records name, in full.

An alert or exposure record names the profile it was judged by (`profile`). The bundle holds,
for each such profile (and the site's configured one), its whole limit table with the legal
source of every value (`limits.csv`, one `profile` column) and the profile files it was built
from (`profile-<file name>`: the profile's own TOML file and those it extends), so an inspector
can check every threshold the alerts cite without oshmon.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.files import write_bytes
from reports.render import write_csv
from rules.errors import ConfigError
from rules.profiles import ProfileBook, describe_limits

LIMITS_FILE = "limits.csv"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
FILE_PREFIX = "profile-"


@dataclass(slots=True)
class ProfileNames:
    """Profile names seen in exported records (fed by `tap` while the rows stream to disk)."""

    names: set[str] = field(default_factory=set)

    def tap(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for row in rows:
            name = row.get("profile")
            if name:
                self.names.add(str(name))
            yield row


def write_profiles(out_dir: Path, book: ProfileBook, names: Iterable[str]) -> tuple[int, dict[str, Any]]:
    """Write limits.csv and the profile files; returns (limit rows, bundle.json's `profiles`)."""
    rows: list[dict[str, str]] = []
    meta: dict[str, Any] = {}
    written: dict[Path, str] = {}
    for name in sorted(set(names)):
        try:
            prof = book.profile(name)
        except ConfigError:
            meta[name] = {"loaded": False, "note": "named by exported records but not loaded here: limits missing"}
            continue
        limits = describe_limits(book, name)
        rows += [{"profile": name, **r} for r in limits]
        files = [_copy(out_dir, Path(o), written) for o in prof.origin.split("; ") if Path(o).is_file()]
        meta[name] = {"loaded": True, "title": prof.title, "limits": len(limits), "files": files}
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["profile", "note"]
    n = write_csv(out_dir / LIMITS_FILE, columns, rows)
    return n, meta


def _copy(out_dir: Path, src: Path, written: dict[Path, str]) -> str:
    """`profile-<name>` in the bundle for the profile file `src` (once per file)."""
    key = src.resolve()
    if key in written:
        return written[key]
    stem, suffix = _SAFE.sub("_", src.stem), _SAFE.sub("_", src.suffix)
    name, n = f"{FILE_PREFIX}{stem}{suffix}", 1
    while name in written.values():
        n += 1
        name = f"{FILE_PREFIX}{stem}-{n}{suffix}"
    write_bytes(out_dir / name, src.read_bytes())
    written[key] = name
    return name
