"""`oshmon export evidence` / `oshmon export verify`: an inspector's evidence bundle.

A bundle is a folder of plain files: readings, shift exposures, alert events (with who
acknowledged and their note), one row per alert with its handling, the limit profile used (with
sources), bundle.json (what was exported, when, row counts) and README.txt. `SHA256SUMS` lists
the SHA-256 of every file in the format of coreutils `sha256sum`, so the bundle can be checked
without oshmon (`sha256sum -c SHA256SUMS`). The SHA-256 of SHA256SUMS itself is the bundle
digest: written down by the inspector when the bundle is handed over, it seals the whole set.
Worker ids are exported as stored (an inspector's legal access), not pseudonymised.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from alerts.audit import Anchor
from alerts.types import rfc3339
from reports.alert_stats import lifecycles
from reports.anchors import audit_heads
from reports.evidence_profiles import LIMITS_FILE, ProfileNames, write_profiles
from reports.files import open_new, prepare_out_dir, write_bytes, write_text
from reports.history import render
from reports.monthly import oshmon_version
from reports.monthly_files import ALERT_COLUMNS, alert_handling_row
from reports.render import write_csv
from rules.errors import ConfigError
from rules.profiles import ProfileBook
from storage.base import HistoryQuery, RecordKind, Store

MANIFEST = "SHA256SUMS"
SCHEMA = "oshmon.evidence/1"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CHUNK = 1 << 20
Progress = Callable[[str, int], None]

README = """oshmon evidence bundle
======================
site: {site}
from: {t_from} (inclusive)   to: {t_to} (exclusive), UTC
generated: {generated} by oshmon {version}

readings.csv.gz     every stored reading, gzip-compressed CSV (canonical units; t = event time, UTC)
exposures.csv       shift exposure records (twa8, stel15_max, peak, coverage, limits in force)
alerts.csv          every alert event: raised, escalated (reason), acknowledged (by, note), cleared
alert_handling.csv  one row per alert: since, acknowledged at/by/note, time to acknowledge, cleared
limits.csv          every limit of every profile the records name (profile column), with its source
profile-*.toml      the profile files those limits come from
bundle.json         what was exported, when, row counts, the profiles, the audit chain heads
SHA256SUMS          SHA-256 of every file above

Check the files:  sha256sum -c SHA256SUMS     (or: oshmon export verify <this folder> --digest <seal>)
Bundle digest (SHA-256 of SHA256SUMS) at export: see the exporting officer's record.
Audit chain heads at export (bundle.json audit_heads): oshmon audit verify --from-bundle <this folder>
finds alert events deleted or rewritten in the store since.
"""
#: Rows between two progress calls of a long export.
PROGRESS_ROWS = 50_000


class _HashingWriter(io.RawIOBase):
    """A binary sink that writes through to a file and feeds a SHA-256 on the way."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.fh.write(data)
        return len(data)


def _write_rows(path: Path, rows: Iterable[Mapping[str, Any]], kind: RecordKind) -> tuple[int, str]:
    """Stream store rows as CSV into `path` (gzip when it ends in .gz); returns (rows, SHA-256 hex
    of the file as written) without reading it back."""
    with open_new(path, "wb") as fh:
        raw = _HashingWriter(fh)
        buffered = io.BufferedWriter(raw)
        # mtime 0 and no file name in the gzip header: the same rows give the same bytes
        packed = gzip.GzipFile(filename="", mode="wb", fileobj=buffered, mtime=0) if path.suffix == ".gz" else None
        text = io.TextIOWrapper(packed or buffered, encoding="utf-8", newline="")
        n = render(rows, kind, "csv", text)
        text.flush()
        text.detach()
        if packed is not None:
            packed.close()
        buffered.flush()
        digest = raw.sha.hexdigest()
    return n, digest


def _counted(rows: Iterable[Mapping[str, Any]], name: str, progress: Progress | None) -> Iterator[Mapping[str, Any]]:
    n = 0
    for n, row in enumerate(rows, start=1):
        if progress is not None and n % PROGRESS_ROWS == 0:
            progress(name, n)
        yield row
    if progress is not None:
        progress(name, n)


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def bundle_digest(bundle: Path) -> str:
    """SHA-256 of the bundle's manifest: one value that seals every file in it."""
    return sha256_file(Path(bundle) / MANIFEST)


def export_evidence(
    store: Store,
    site: str,
    t_from_s: float,
    t_to_s: float,
    out_dir: Path,
    profile_rows: Sequence[Mapping[str, str]] | None = None,
    *,
    now_s: float | None = None,
    book: ProfileBook | None = None,
    site_profile: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the evidence bundle of `site` for [t_from_s, t_to_s) into `out_dir` (new or empty).

    With `book`, limits.csv holds every limit of every profile the exported records name (and
    `site_profile`, the one configured for the site), and the profile files are copied in; without
    it, `profile_rows` as given. `progress(file, rows)` is called while long files are written.
    bundle.json names the profiles and the head of every audit chain in the store at export.
    Returns the path of the manifest (`out_dir/SHA256SUMS`); `bundle_digest(out_dir)` seals it.
    """
    if not t_from_s < t_to_s:
        raise ValueError("the export period is empty: --from must be before --to")
    out_dir = prepare_out_dir(out_dir, what="an evidence bundle", forceable=False)  # evidence is never overwritten
    now_s = time.time() if now_s is None else now_s
    digests: dict[str, str] = {}
    counts: dict[str, int] = {}
    seen = ProfileNames({site_profile} if site_profile else set())
    for name, kind in (("readings.csv.gz", RecordKind.READINGS), ("exposures.csv", RecordKind.EXPOSURES),
                       ("alerts.csv", RecordKind.ALERTS)):  # fmt: skip
        rows = store.query(HistoryQuery(kind, site=site, t_from_s=t_from_s, t_to_s=t_to_s))
        counts[name], digests[name] = _write_rows(out_dir / name, _counted(seen.tap(rows), name, progress), kind)
    alerts = lifecycles(store.query(HistoryQuery(RecordKind.ALERTS, site=site, t_from_s=t_from_s, t_to_s=t_to_s)))
    counts["alert_handling.csv"] = write_csv(
        out_dir / "alert_handling.csv", ALERT_COLUMNS, (alert_handling_row(a) for a in alerts)
    )
    meta: dict[str, Any] = {"audit_heads": audit_heads(store)}
    if book is not None:
        counts[LIMITS_FILE], meta["profiles"] = write_profiles(out_dir, book, seen.names)
    else:
        limits = [dict(r) for r in profile_rows or []]
        columns = list(dict.fromkeys(k for r in limits for k in r)) or ["note"]
        counts[LIMITS_FILE] = write_csv(out_dir / LIMITS_FILE, columns, limits)
        meta["profiles"] = {name: {"loaded": False} for name in sorted(seen.names)}
    _write_meta(out_dir, site, t_from_s, t_to_s, now_s, counts, meta)
    return _write_manifest(out_dir, digests)


def _write_meta(
    out_dir: Path, site: str, t_from_s: float, t_to_s: float, now_s: float, counts: dict[str, int],
    extra: Mapping[str, Any],
) -> None:  # fmt: skip
    meta = {
        "schema": SCHEMA, "site": site, "from": rfc3339(t_from_s), "to": rfc3339(t_to_s),
        "generated_at": rfc3339(now_s), "oshmon_version": oshmon_version(), "rows": counts,
        "hash": "sha256", "manifest": MANIFEST, **extra,
    }  # fmt: skip
    write_bytes(out_dir / "bundle.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    readme = README.format(site=site, t_from=meta["from"], t_to=meta["to"], generated=meta["generated_at"],
                           version=meta["oshmon_version"])  # fmt: skip
    write_text(out_dir / "README.txt", readme)


def _write_manifest(out_dir: Path, known: Mapping[str, str]) -> Path:
    lines = []
    for path in sorted(out_dir.iterdir()):
        if path.name != MANIFEST:
            lines.append(f"{known.get(path.name) or sha256_file(path)}  {path.name}\n")
    manifest = out_dir / MANIFEST
    write_text(manifest, "".join(lines))
    return manifest


def _manifest_entries(text: str, problems: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), start=1):
        m = _LINE.match(line)
        if not m or not _SAFE_NAME.match(m.group(2)):
            problems.append(f"{MANIFEST} line {no} is not '<sha256>  <file name>': {line[:80]!r}")
        elif m.group(2) in entries:
            problems.append(f"{MANIFEST} lists {m.group(2)} twice")
        else:
            entries[m.group(2)] = m.group(1)
    return entries


def verify_bundle(bundle: Path, *, expected_digest: str | None = None) -> list[str]:
    """Problems found in an evidence bundle (empty list: every file is as exported).

    Checks that every file in the manifest exists with the same SHA-256, that no file was added,
    and, when `expected_digest` (the bundle digest recorded at export) is given, that the
    manifest itself is unchanged.
    """
    bundle = Path(bundle)
    manifest = bundle / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST} is missing from {bundle}"]
    problems: list[str] = []
    if expected_digest is not None and bundle_digest(bundle) != expected_digest.strip().lower():
        problems.append(f"{MANIFEST} has changed: its SHA-256 is not the recorded bundle digest")
    entries = _manifest_entries(manifest.read_text(encoding="utf-8", errors="replace"), problems)
    for name, digest in sorted(entries.items()):
        path = bundle / name
        if not path.is_file():
            problems.append(f"{name} is listed in {MANIFEST} but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} has changed since export (SHA-256 differs)")
    for path in sorted(bundle.iterdir()):
        if path.name != MANIFEST and path.name not in entries:
            problems.append(f"{path.name} is not listed in {MANIFEST} (added after export)")
    return problems


def bundle_heads(bundle: Path) -> dict[str, Anchor]:
    """The audit chain heads a bundle recorded at export (`bundle.json` `audit_heads`).

    The bundle must still match its manifest: heads from an altered bundle anchor nothing.
    """
    bundle = Path(bundle)
    problems = verify_bundle(bundle)
    if problems:
        raise ConfigError(f"{bundle}: the bundle does not match its manifest ({problems[0]})")
    try:
        meta = orjson.loads((bundle / "bundle.json").read_bytes())
        return {str(k): Anchor.parse(str(v)) for k, v in (meta.get("audit_heads") or {}).items()}
    except (OSError, orjson.JSONDecodeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{bundle}/bundle.json: cannot read the audit heads: {exc}") from None
