"""Evidence bundles from a real SQLite store: contents, SHA-256 manifest, and tamper detection."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from alerts.audit import Anchor, AuditChain
from alerts.types import AlertEvent
from reports.evidence import MANIFEST, bundle_digest, bundle_heads, export_evidence, verify_bundle
from reports.files import OutputDirError
from rules.profiles import BUILTIN_DIR, ProfileBook
from rules.types import ChannelKey, Hazard, ReadingBatch
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.report_data import PROFILE_ROWS, MonthSpec, alert_events, exposures

FROM = datetime.fromisoformat("2026-11-01T00:00:00Z").timestamp()
TO = datetime.fromisoformat("2026-11-08T00:00:00Z").timestamp()
PROFILE = PROFILE_ROWS


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    keys = [ChannelKey("kop-1", "north", "gd-1", Hazard.CO), ChannelKey("kop-2", "south", "gd-9", Hazard.CO)]
    t = FROM - 86400 + np.arange(0, 10 * 86400, 600, dtype=np.float64)  # every 10 min over 10 days
    channel = np.arange(t.size) % 2
    st.write_readings(keys, ReadingBatch(channel.astype(np.int64), t, 3.0 + (t % 7)))
    st.write_exposures(list(exposures(MonthSpec(), "2026-11")))
    st.write_exposures(list(exposures(MonthSpec(site="kop-2"), "2026-11"))[:20])
    st.write_alert_events(sealed(alert_events(MonthSpec(), "2026-11", 40)))
    yield st
    st.close()


def sealed(events: list[AlertEvent]) -> list[AlertEvent]:
    chain = AuditChain()
    out = []
    for e in events:
        link = chain.append(e)
        out.append(replace(e, audit_chain="gw-1", audit_seq=link.audit_seq, prev_hash=link.prev_hash, hash=link.hash))
    return out


@pytest.fixture(scope="module")
def bundle(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "kop-1"
    manifest = export_evidence(store, "kop-1", FROM, TO, out, PROFILE, now_s=TO + 3600)
    assert manifest == out / MANIFEST
    return out


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def read(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_bundle_holds_the_site_records_of_the_period(store: SqliteStore, bundle: Path) -> None:
    names = sorted(p.name for p in bundle.iterdir())
    assert names == sorted(["readings.csv.gz", "exposures.csv", "alerts.csv", "alert_handling.csv", "limits.csv",
                            "bundle.json", "README.txt", MANIFEST])  # fmt: skip
    for name, kind in (("readings.csv.gz", RecordKind.READINGS), ("exposures.csv", RecordKind.EXPOSURES),
                       ("alerts.csv", RecordKind.ALERTS)):  # fmt: skip
        expected = list(store.query(HistoryQuery(kind, site="kop-1", t_from_s=FROM, t_to_s=TO)))
        got = read(bundle / name)
        assert len(got) == len(expected) > 0, name
        assert {r["site"] for r in got} == {"kop-1"}
        assert got[0]["t"] == expected[0]["t"] and got[-1]["t"] == expected[-1]["t"]
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["site"] == "kop-1" and meta["from"] == "2026-11-01T00:00:00Z" and meta["to"] == "2026-11-08T00:00:00Z"
    assert meta["rows"]["readings.csv.gz"] == len(read(bundle / "readings.csv.gz"))


def test_acknowledgements_and_limit_sources_are_in_the_bundle(bundle: Path) -> None:
    events = read(bundle / "alerts.csv")
    acks = [e for e in events if e["event"] == "acknowledged"]
    assert acks and all(e["by"] == "officer-1" and e["note"] == "ventilation fixed" for e in acks)
    handling = {r["alert_id"]: r for r in read(bundle / "alert_handling.csv")}
    assert len(handling) == len({e["alert_id"] for e in events})
    acked = [r for r in handling.values() if r["acknowledged_at"]]
    assert acked and all(float(r["time_to_ack_s"]) >= 0 and r["ack_by"] == "officer-1" for r in acked)
    limits = read(bundle / "limits.csv")
    assert [r["source"] for r in limits] == [p["source"] for p in PROFILE]


def test_untouched_bundle_verifies_also_with_coreutils(bundle: Path) -> None:
    assert verify_bundle(bundle) == []
    assert verify_bundle(bundle, expected_digest=bundle_digest(bundle)) == []
    done = subprocess.run(["sha256sum", "--strict", "-c", MANIFEST], cwd=bundle, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(list(bundle.iterdir())) - 1


def test_a_changed_byte_is_found(bundle: Path, tmp_path: Path) -> None:
    b = copy_of(bundle, tmp_path)
    data = bytearray((b / "alerts.csv").read_bytes())
    i = data.index(b"officer-1")
    data[i : i + 9] = b"officer-2"
    (b / "alerts.csv").write_bytes(bytes(data))
    assert verify_bundle(b) == ["alerts.csv has changed since export (SHA-256 differs)"]


def test_missing_and_added_files_are_found(bundle: Path, tmp_path: Path) -> None:
    b = copy_of(bundle, tmp_path)
    (b / "readings.csv.gz").unlink()
    (b / "extra.csv").write_text("t,value\n")
    assert verify_bundle(b) == [
        f"readings.csv.gz is listed in {MANIFEST} but missing",
        f"extra.csv is not listed in {MANIFEST} (added after export)",
    ]


def test_a_rewritten_manifest_is_caught_by_the_recorded_digest(bundle: Path, tmp_path: Path) -> None:
    digest = bundle_digest(bundle)
    b = copy_of(bundle, tmp_path)
    (b / "limits.csv").write_text("source\nforged\n")
    lines = [ln for ln in (b / MANIFEST).read_text().splitlines() if not ln.endswith("limits.csv")]
    forged = subprocess.run(["sha256sum", "limits.csv"], cwd=b, capture_output=True, text=True, check=True).stdout
    (b / MANIFEST).write_text("\n".join([*lines, forged.strip()]) + "\n")
    assert verify_bundle(b) == []  # consistent on its own ...
    assert verify_bundle(b, expected_digest=digest) == [
        f"{MANIFEST} has changed: its SHA-256 is not the recorded bundle digest"
    ]  # ... but not the bundle that was handed over


def test_malformed_manifest_and_unsafe_names(bundle: Path, tmp_path: Path) -> None:
    b = copy_of(bundle, tmp_path)
    with (b / MANIFEST).open("a") as fh:
        fh.write("not a line\n" + "0" * 64 + "  ../etc/passwd\n")
    problems = verify_bundle(b)
    assert len(problems) == 2 and all(p.startswith(f"{MANIFEST} line") for p in problems)
    (b / MANIFEST).unlink()
    assert verify_bundle(b) == [f"{MANIFEST} is missing from {b}"]


def test_export_refuses_a_used_folder_and_an_empty_period(store: SqliteStore, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(OutputDirError, match="not an empty folder"):
        export_evidence(store, "kop-1", FROM, TO, tmp_path, PROFILE)
    with pytest.raises(ValueError, match="empty"):
        export_evidence(store, "kop-1", TO, FROM, tmp_path / "new", PROFILE)


def test_readings_are_compressed_and_reproducible(store: SqliteStore, bundle: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    export_evidence(store, "kop-1", FROM, TO, again, PROFILE, now_s=TO + 3600)
    raw = (bundle / "readings.csv.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw == (again / "readings.csv.gz").read_bytes()  # gzip, same bytes
    assert len(raw) < len(gzip.decompress(raw)) / 3


def test_the_bundle_carries_every_profile_its_records_name(tmp_path: Path) -> None:
    """Issue 13 point 3: alerts named profile demo-mine, the bundle held only the eu rows and named no profile."""
    st = SqliteStore(tmp_path / "osh.db")
    msha = [replace(e, profile="us-msha") for e in alert_events(MonthSpec(), "2026-11", 6)]
    st.write_alert_events(msha)
    st.write_exposures(list(exposures(MonthSpec(), "2026-11"))[:5])  # profile eu
    inside = next(e for e in msha if FROM <= e.t_s < TO - 1)
    ghost = replace(inside, alert_id="01GHOST", profile="retired-profile", t_s=inside.t_s + 1)
    st.write_alert_events([ghost])
    out = tmp_path / "b"
    export_evidence(st, "kop-1", FROM, TO, out, None, book=ProfileBook.load(), site_profile="eu-mine", now_s=TO)
    st.close()
    meta = json.loads((out / "bundle.json").read_text())
    profiles = meta["profiles"]
    assert {k for k, v in profiles.items() if v["loaded"]} == {"eu", "eu-mine", "us-msha"}
    assert profiles["retired-profile"]["loaded"] is False
    limits = read(out / "limits.csv")
    by_profile = {p: [r for r in limits if r["profile"] == p] for p in ("eu", "eu-mine", "us-msha")}
    assert all(by_profile.values()) and all(r["source"] for r in limits)
    assert {r["hazard"] for r in by_profile["us-msha"]} >= {"ch4", "o2"}
    for name in ("eu", "us-msha"):
        files = profiles[name]["files"]
        assert files and all((out / f).is_file() and f.startswith("profile-") for f in files)
    assert (out / "profile-us-msha.toml").read_bytes() == (BUILTIN_DIR / "us-msha.toml").read_bytes()
    assert verify_bundle(out) == []  # the profile files are in the manifest


def test_bundle_json_names_the_audit_chain_heads(bundle: Path) -> None:
    meta = json.loads((bundle / "bundle.json").read_text())
    heads = meta["audit_heads"]
    n_events = len(sealed(alert_events(MonthSpec(), "2026-11", 40)))
    assert list(heads) == ["gw-1"] and Anchor.parse(heads["gw-1"]).audit_seq == n_events - 1
    assert bundle_heads(bundle) == {k: Anchor.parse(v) for k, v in heads.items()}


def test_export_shows_progress_on_long_files(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    monkeypatch.setattr("reports.evidence.PROGRESS_ROWS", 100)
    export_evidence(store, "kop-1", FROM, TO, tmp_path / "p", PROFILE, progress=lambda f, n: seen.append((f, n)))
    readings = [n for f, n in seen if f == "readings.csv.gz"]
    assert readings[:2] == [100, 200] and readings[-1] == len(read(tmp_path / "p" / "readings.csv.gz"))
