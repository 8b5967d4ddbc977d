"""The tamper-evident alert log end to end: events sealed by the pipeline, checked by the CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli_sim import run_backfill
from gateway.config import Settings, load_settings
from gateway.runtime import verify_audit_chain
from simulators import MineSpec, scenario

ROOT = Path(__file__).resolve().parent.parent


def settings_for(tmp: Path, client: str) -> Settings:
    return load_settings(
        None, sqlite_path=tmp / "osh.sqlite", state_dir=tmp / f"state-{client}", profile="us-msha",
        mqtt_client_id=client,
    )  # fmt: skip


@pytest.fixture
def sealed_store(tmp_path: Path) -> Path:
    """Two writers (two gateways) each seal their own chain into one store."""
    t0 = time.time() - 3 * 3600
    run_backfill(settings_for(tmp_path, "gw-a"), MineSpec(), scenario("methane"), t0, 3600.0, 10.0, 1)
    run_backfill(settings_for(tmp_path, "gw-b"), MineSpec(), scenario("oxygen-dip"), t0 + 3600, 3600.0, 10.0, 2)
    return tmp_path


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"OSH_SQLITE_PATH": str(tmp / "osh.sqlite"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_sealed_events_verify_per_writer(sealed_store: Path) -> None:
    ok, message = verify_audit_chain(settings_for(sealed_store, "reader"))
    assert ok, message
    assert "chain gw-a: audit chain OK" in message and "chain gw-b: audit chain OK" in message
    with sqlite3.connect(sealed_store / "osh.sqlite") as db:
        n = db.execute("SELECT count(*) FROM alert WHERE hash IS NOT NULL").fetchone()[0]
    assert n >= 4  # methane: raised alarm, raised critical, cleared ...; oxygen: raised, cleared
    assert cli(sealed_store, "audit", "verify").returncode == 0


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE alert SET message = 'all fine' WHERE rowid = (SELECT min(rowid) FROM alert)", "altered"),
        ("DELETE FROM alert WHERE audit_seq = 1 AND audit_chain = 'gw-a'", "missing"),
        ("UPDATE alert SET value = value + 0.5 WHERE audit_chain = 'gw-b' AND audit_seq = 0", "altered"),
        (
            "INSERT INTO alert (site, zone, device, hazard, worker, rule, severity, event, t_ms, alert_id, message) "
            "VALUES ('kop-1', 'z', 'd', 'ch4', '', 'level', 'alarm', 'cleared', 1, 'x', 'forged')",
            "no audit hash",
        ),
    ],
)
def test_any_change_to_the_stored_log_is_detected(sealed_store: Path, tamper: str, expected: str) -> None:
    with sqlite3.connect(sealed_store / "osh.sqlite") as db:
        db.execute(tamper)
    ok, message = verify_audit_chain(settings_for(sealed_store, "reader"))
    assert not ok and expected in message, message
    done = cli(sealed_store, "audit", "verify")
    assert done.returncode == 1 and expected in done.stderr + done.stdout


def test_status_lists_store_and_open_alerts(sealed_store: Path) -> None:
    env = {"OSH_SQLITE_PATH": str(sealed_store / "osh.sqlite"), "OSH_STATE_DIR": str(sealed_store / "state-gw-b"),
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "status"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"store: sqlite ({sealed_store / 'osh.sqlite'})" in done.stdout
    assert "open alerts:" in done.stdout


def _head(message: str, chain: str) -> str:
    line = next(x for x in message.splitlines() if x.startswith(f"chain {chain}:"))
    return line.rsplit("head ", 1)[1]


def test_a_deleted_last_event_is_caught_by_the_anchored_head(sealed_store: Path) -> None:
    """Issue 13 point 4: after deleting the last event, verify said "OK" with a new head."""
    ok, message = verify_audit_chain(settings_for(sealed_store, "reader"))
    assert ok, message
    head = _head(message, "gw-b")
    with sqlite3.connect(sealed_store / "osh.sqlite") as db:
        db.execute("DELETE FROM alert WHERE audit_chain = 'gw-b' AND audit_seq = ?", (int(head.split(":")[0]),))
    assert cli(sealed_store, "audit", "verify").returncode == 0  # the chain alone cannot tell
    done = cli(sealed_store, "audit", "verify", "--head", head, "--chain", "gw-b")
    assert done.returncode == 1 and "truncated" in done.stderr, done.stderr
    assert "chain gw-a: audit chain OK" in done.stderr  # the other writer's chain is still checked
    vague = cli(sealed_store, "audit", "verify", "--head", head)
    assert vague.returncode != 0 and "--head needs --chain" in vague.stderr and "Traceback" not in vague.stderr
    bad = cli(sealed_store, "audit", "verify", "--head", "12:abc", "--chain", "gw-b")
    assert bad.returncode != 0 and "SEQ:HASH" in bad.stderr and "Traceback" not in bad.stderr


def test_verify_lists_every_break(sealed_store: Path) -> None:
    """Issue 15 point 3: verify stopped at the first break and hid a later real edit."""
    with sqlite3.connect(sealed_store / "osh.sqlite") as db:
        db.execute("DELETE FROM alert WHERE audit_chain = 'gw-a' AND audit_seq = 1")
        db.execute("UPDATE alert SET note = 'forged' WHERE audit_chain = 'gw-a' AND audit_seq = 3")
    ok, message = verify_audit_chain(settings_for(sealed_store, "reader"))
    assert not ok
    assert "2 breaks" in message and "event(s) missing" in message and "altered" in message, message


def test_export_verify_says_whether_the_seal_was_checked(sealed_store: Path) -> None:
    """Issue 13 point 4: verify said "verified" after the manifest was rebuilt, without the seal."""
    out = sealed_store / "bundle"
    done = cli(sealed_store, "export", "evidence", "--site", "kop-1", "--from", "2020-01-01", "--to", "2040-01-01",
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    seal = done.stdout.strip().rsplit(" ", 1)[1]
    no_seal = cli(sealed_store, "export", "verify", str(out))
    assert no_seal.returncode == 2 and no_seal.stderr.count("\n") == 1 and "seal not checked" in no_seal.stderr
    assert "verified" not in no_seal.stdout
    files_only = cli(sealed_store, "export", "verify", str(out), "--no-seal")
    first = files_only.stdout.splitlines()[0]
    assert files_only.returncode == 0 and first.startswith("seal NOT checked") and "verified" not in first
    sealed = cli(sealed_store, "export", "verify", str(out), "--digest", seal)
    assert sealed.returncode == 0 and sealed.stdout.startswith("seal checked: ") and "verified" in sealed.stdout
    (out / "alerts.csv").write_text("forged\n")  # and the manifest rebuilt to match
    lines = [ln for ln in (out / "SHA256SUMS").read_text().splitlines() if not ln.endswith("alerts.csv")]
    forged = subprocess.run(["sha256sum", "alerts.csv"], cwd=out, capture_output=True, text=True, check=True)
    (out / "SHA256SUMS").write_text("\n".join([*lines, forged.stdout.strip()]) + "\n")
    assert cli(sealed_store, "export", "verify", str(out), "--no-seal").returncode == 0  # what --no-seal means
    caught = cli(sealed_store, "export", "verify", str(out), "--digest", seal)
    assert caught.returncode == 1 and caught.stderr.startswith("seal checked: ") and "FAILED" in caught.stderr


def test_audit_verify_from_a_bundle_finds_a_deleted_last_event(sealed_store: Path) -> None:
    out = sealed_store / "bundle"
    done = cli(sealed_store, "export", "evidence", "--site", "kop-1", "--from", "2020-01-01", "--to", "2040-01-01",
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cli(sealed_store, "audit", "verify", "--from-bundle", str(out)).returncode == 0
    with sqlite3.connect(sealed_store / "osh.sqlite") as db:
        db.execute("DELETE FROM alert WHERE audit_chain = 'gw-a' AND audit_seq = (SELECT max(audit_seq) FROM alert "
                   "WHERE audit_chain = 'gw-a')")  # fmt: skip
    assert cli(sealed_store, "audit", "verify").returncode == 0
    caught = cli(sealed_store, "audit", "verify", "--from-bundle", str(out))
    assert caught.returncode == 1 and "chain gw-a" in caught.stderr and "truncated" in caught.stderr, caught.stderr
