"""Files and text (issue 15 point 8): --out folders, planted links, CSV injection, state file modes,
configuration errors at start-up. Real files, a real SQLite store, `oshmon` as a subprocess."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from alerts.sinks.config import SinksConfig
from alerts.types import AlertEvent, AlertEventKind
from gateway.config import load_settings
from gateway.runtime import pseudonym_key
from gateway.state_dir import private_state_dir
from reports.evidence import export_evidence
from reports.files import OutputDirError, csv_text, prepare_out_dir, write_text
from reports.history import render
from reports.monthly import build_monthly
from rules.errors import ConfigError
from rules.types import Hazard, RuleKind, Severity
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
T = 1_795_340_000.0  # 2026-11-22T09:33:20Z
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", "\tx", "\rx"]


def oshmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


# -- --out folders ---------------------------------------------------------------------------------
def test_out_dir_must_be_new_or_empty_unless_forced(tmp_path: Path) -> None:
    assert prepare_out_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputDirError, match=r"--out .*used: not an empty folder \(1 entries: notes.txt\).*--force"):
        prepare_out_dir(tmp_path / "used")
    prepare_out_dir(tmp_path / "used", force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        prepare_out_dir(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path / "new")
    with pytest.raises(OutputDirError, match="symbolic link"):
        prepare_out_dir(tmp_path / "link")


def test_a_planted_link_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    write_text(out / "report.html", "<html>report</html>")
    assert victim.read_text() == "precious"
    assert not (out / "report.html").is_symlink() and (out / "report.html").read_text() == "<html>report</html>"
    assert sorted(p.name for p in out.iterdir()) == ["report.html"], "no temporary file is left behind"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "osh.sqlite"
    store = SqliteStore(path)
    store.write_alert_events([formula_alert()])
    store.close()
    return path


def test_report_monthly_refuses_a_used_out_and_never_writes_through_a_planted_link(db: Path, tmp_path: Path) -> None:
    """Issue 15 point 8: `report monthly --out` wrote into a non-empty folder and followed
    `report.html -> victim.txt`, overwriting victim.txt."""
    victim, out = tmp_path / "victim.txt", tmp_path / "rep"
    victim.write_text("precious")
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    env = {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(db), "OSH_STATE_DIR": str(tmp_path / "state")}
    refused = oshmon("report", "monthly", "--month", "2026-11", "--out", str(out), env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "not an empty folder" in refused.stderr and "--force" in refused.stderr
    forced = oshmon("report", "monthly", "--month", "2026-11", "--out", str(out), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert victim.read_text() == "precious"
    assert not (out / "report.html").is_symlink() and "<html" in (out / "report.html").read_text()


def test_export_evidence_refuses_a_used_folder_with_one_line(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    out.mkdir()
    (out / "old.csv").write_text("x")
    env = {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(db), "OSH_STATE_DIR": str(tmp_path / "state")}
    r = oshmon("export", "evidence", "--site", "kop-1", "--from", "2026-11-01", "--to", "2026-12-01",
               "--out", str(out), env=env)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not an empty folder" in r.stderr, r.stderr
    assert "--force" not in r.stderr, "evidence is never overwritten: no --force to suggest"


# -- CSV injection ----------------------------------------------------------------------------------
def formula_alert(note: str = FORMULAS[0], by: str = FORMULAS[1]) -> AlertEvent:
    return AlertEvent(
        alert_id="01JFORMULA", event=AlertEventKind.ACKNOWLEDGED, severity=Severity.ALARM, rule=RuleKind.STEL,
        site="kop-1", zone="z", device="gd-1", hazard=Hazard.CO, worker=None, value=-3.5, threshold=100.0,
        unit="ppm", t_s=T, since_s=T - 60, profile="eu", limit_source="src", action="act",
        message="=1+1", by=by, note=note,
    )  # fmt: skip


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_text_is_neutralised_and_numbers_are_not(text: str) -> None:
    assert csv_text(text) == "'" + text
    assert csv_text(-3.5) == -3.5 and csv_text(-2) == -2 and csv_text("kop-1") == "kop-1"


def test_history_csv_neutralises_text_cells_only(db: Path) -> None:
    store = SqliteStore(db)
    try:
        buf = io.StringIO()
        render(store.query(HistoryQuery(RecordKind.ALERTS)), RecordKind.ALERTS, "csv", buf)
    finally:
        store.close()
    (row,) = csv.DictReader(io.StringIO(buf.getvalue()))
    assert row["note"] == "'" + FORMULAS[0] and row["by"] == "'" + FORMULAS[1] and row["message"] == "'=1+1"
    assert row["value"] == "-3.5", "a negative number stays a number"


def test_evidence_and_report_csvs_neutralise_formulas(db: Path, tmp_path: Path) -> None:
    """Issue 15 point 8: `=HYPERLINK(...)`, `@SUM(...)` went unescaped into evidence and report CSVs."""
    store = SqliteStore(db)
    try:
        export_evidence(store, "kop-1", T - 86400, T + 86400, tmp_path / "ev", [{"hazard": "=co"}], now_s=T)
        build_monthly(store, "2026-11", "kop-1", "en", tmp_path / "rep", limits_profile_rows=None,
                      pseudonym_key=b"k", now_s=T + 86400 * 10)  # fmt: skip
    finally:
        store.close()
    written = [*(tmp_path / "ev").glob("*.csv"), *(tmp_path / "rep").glob("*.csv")]
    assert len(written) >= 5
    for path in written:
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), f"{path.name}: {cell!r}"
                assert not cell.startswith("-") or _is_number(cell), f"{path.name}: {cell!r}"
    handling = (tmp_path / "ev" / "alert_handling.csv").read_text()
    assert "'=HYPERLINK" in handling or "'@SUM" in handling


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# -- state files -------------------------------------------------------------------------------------
def test_state_dir_is_private_and_existing_files_are_tightened(tmp_path: Path) -> None:
    """Issue 15 point 8: state files (with ack names and notes) were world-readable."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    for name in ("alerts.json", "pseudonym.key"):
        (state / name).write_text("{}")
        os.chmod(state / name, 0o644)
    (state / "spool").mkdir()
    (state / "spool" / "cursor").write_text("0 0")
    private_state_dir(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "spool").stat().st_mode) == 0o700
    for f in ("alerts.json", "pseudonym.key", "spool/cursor"):
        assert stat.S_IMODE((state / f).stat().st_mode) == 0o600, f


def test_a_shared_state_dir_keeps_other_files_as_they_are(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`OSH_STATE_DIR=.` must not chmod someone's own files (or /tmp itself)."""
    shared = tmp_path / "project"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    (shared / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(shared / "run.sh", 0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.chmod(outside, 0o644)
    (shared / "alerts.json").symlink_to(outside)
    (shared / "pseudonym.key").write_text("k")
    os.chmod(shared / "pseudonym.key", 0o644)
    private_state_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755 and "others can read it" in caplog.text
    assert stat.S_IMODE((shared / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644, "a link's target is not touched"
    assert stat.S_IMODE((shared / "pseudonym.key").stat().st_mode) == 0o600


def test_a_new_state_dir_and_pseudonym_key_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSH_STATE_DIR", str(tmp_path / "fresh" / "state"))
    monkeypatch.setenv("OSH_STORE", "sqlite")
    pseudonym_key(load_settings(None))
    assert stat.S_IMODE((tmp_path / "fresh" / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "fresh" / "state" / "pseudonym.key").stat().st_mode) == 0o600


# -- configuration errors at start-up -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example/T0KEN", "must start with https://"),
        ("hooks.example/T0KEN", "must start with https://"),
        ("file:///etc/passwd", "must start with https://"),
        ("https:///T0KEN", "has no host name"),
        ("https://hooks.example:99999/T0KEN", "not a valid URL"),
    ],
)
def test_bad_webhook_urls_are_configuration_errors(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as err:
        SinksConfig.model_validate({"sinks": [{"kind": "webhook", "name": "ops", "url": url}]})
    assert "T0KEN" not in str(err.value), "the URL may carry a token: never repeat it"


def test_email_addresses_cannot_inject_headers() -> None:
    base = {"kind": "email", "name": "mail", "host": "smtp.example", "sender": "osh@mine.example"}
    with pytest.raises(ValueError, match="recipients"):
        SinksConfig.model_validate({"sinks": [{**base, "recipients": ["a@b.example\r\nBcc: x@evil.example"]}]})
    SinksConfig.model_validate({"sinks": [{**base, "recipients": ["officer@mine.example"]}]})


def test_oshmon_run_stops_at_start_up_naming_the_field(tmp_path: Path) -> None:
    """Issue 15 point 8: a webhook URL with a bad scheme was retried as "unreachable"."""
    cfg = tmp_path / "oshmon.toml"
    cfg.write_text('[[sinks.sinks]]\nkind = "webhook"\nname = "ops"\nurl = "ftp://hooks.example/T0KEN"\n')
    env = {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(tmp_path / "osh.sqlite"), "OSH_MQTT_URL": "mqtt://127.0.0.1:1"}
    r = oshmon("run", "--config", str(cfg), env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "url" in r.stderr and "https://" in r.stderr and "T0KEN" not in r.stderr
    with pytest.raises(ConfigError, match="url"):
        load_settings(cfg)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8086", "127.0.0.1:8086", "http://:8086"])
def test_a_bad_influx_url_is_a_configuration_error_not_unreachable(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was retried as "InfluxDB unreachable (UnsupportedProtocol)" at every write."""
    monkeypatch.setenv("OSH_STORE", "influx")
    monkeypatch.setenv("OSH_INFLUX_URL", url)
    with pytest.raises(ConfigError, match=r"^configuration: influx_url: (must start with https://|has no host)"):
        load_settings(None)


def test_demo_console_shows_event_text_escaped() -> None:
    """Event messages carry ack names and notes: no ESC sequence or rich markup reaches the terminal."""
    from rich.console import Console

    from gateway.demo import print_event

    buf = io.StringIO()
    message = "Acknowledged by Ana\x1b]0;owned\x07: [link=http://x]fan[/link]\nok"
    ev = {"severity": "alarm", "event": "acknowledged", "site": "kop-1", "zone": "z", "device": "gd-1",
          "t": "2026-11-22T09:41:07Z", "message": message}  # fmt: skip
    print_event(Console(file=buf, width=160, force_terminal=True), ev)
    out = buf.getvalue()
    assert "\x1b]0;" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out
    assert "[link=http://x]fan[/link]\\nok" in out
