"""Unit tests of the gateway's local state (issue 9 point 2, issue 15 point 5): where it lives,
which store it belongs to, how open alerts are rebuilt from a store's alert log, how often the
checkpoint is written. Real SQLite files; the gateway-process tests are in test_state_restart.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from alerts.rebuild import OpenScan
from alerts.types import AlertEventKind
from gateway.checkpoint import Checkpoint, load_alerts
from gateway.config import load_settings
from gateway.runtime import Runtime
from gateway.state_dir import default_state_dir, store_identity
from rules.profiles import ProfileBook
from rules.types import ChannelKey, Hazard, ReadingBatch
from storage.sqlite import SqliteStore

T0 = 1_790_000_000.0


def influx(**kw: Any) -> Any:
    return load_settings(None, store="influx", **kw)


# ---- where state lives -------------------------------------------------------------------------
def test_state_dir_is_never_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    sqlite = load_settings(None, store="sqlite", sqlite_path=Path("osh.sqlite"))
    assert sqlite.state_path == tmp_path / "osh.sqlite.state"
    a, b = influx(influx_db="a"), influx(influx_db="b")
    assert a.state_path.is_absolute() and a.state_path != b.state_path
    assert a.state_path.parent == tmp_path / "home" / ".local" / "state" / "oshmon"
    assert a.state_path.name.startswith("127.0.0.1-8086-db-a-")
    v2 = influx(influx_api="v2", influx_org="o", influx_bucket="mine", influx_token="t")
    assert "bucket-mine" in v2.state_path.name


def test_state_dir_follows_xdg_and_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir(influx()).parent == tmp_path / "xdg" / "oshmon"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/oshmon")  # systemd StateDirectory=oshmon
    assert default_state_dir(influx()).parent == Path("/var/lib/oshmon")
    assert influx(state_dir=tmp_path / "x").state_path == tmp_path / "x"


def test_store_identity_names_the_store_without_secrets(tmp_path: Path) -> None:
    s = influx(influx_url="http://admin:hunter2@Influx.Example:8086/", influx_db="mine", influx_password="pw")
    assert store_identity(s) == "influx v1 http://influx.example:8086 db=mine"
    sq = load_settings(None, store="sqlite", sqlite_path=tmp_path / "x" / ".." / "o.sqlite")
    assert store_identity(sq) == f"sqlite {tmp_path / 'o.sqlite'}"


# ---- the checkpoint: bound to its store, written at most once a second -------------------------
def test_checkpoint_of_another_store_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "alerts.json"
    Checkpoint(path, "sqlite /a.sqlite").save(lambda: {"version": 1, "open": []}, force=True)
    assert Checkpoint(path, "sqlite /a.sqlite").read() is not None
    with caplog.at_level(logging.WARNING):
        assert Checkpoint(path, "influx v1 http://h:8086 db=b").read() is None
    assert "belongs to another store (sqlite /a.sqlite)" in caplog.text
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_checkpoint_is_written_at_most_once_a_second(tmp_path: Path) -> None:
    now = [0.0]
    ck = Checkpoint(tmp_path / "alerts.json", "s", clock=lambda: now[0])
    for i in range(25):  # 25 changes within 2.4 s
        ck.save(lambda i=i: {"version": 1, "n": i})  # type: ignore[misc]
        now[0] += 0.1
    assert ck.writes == 3  # at 0.0, 1.0 and 2.0 s
    assert ck.save(lambda: {"version": 1, "n": 99}, force=True)  # shutdown: always
    assert b'"n":99' in (tmp_path / "alerts.json").read_bytes()


def test_runtime_writes_the_checkpoint_at_most_once_a_second(tmp_path: Path) -> None:
    """The old gateway rewrote alerts.json on every tick with a change (issue 15 point 5)."""
    rt = Runtime.build(settings(tmp_path))
    ck = rt.ckpt
    assert ck is not None
    clock = [0.0]
    ck.clock = lambda: clock[0]
    cid = rt.engine.registry.id_for(ChannelKey("kop", "z", "d", Hazard.CO, None))
    for i in range(20):  # a change every 0.1 s for 2 s
        rt.health_on_batch(_sorted(cid, T0 + i, 2500.0 if i % 2 else 0.0), 1e9 + i / 10)
        rt.tick_alerts(1e9 + i / 10)
        ck.wait()  # the worker thread's write (the loop does not wait for it)
        clock[0] += 0.1
    assert 2 <= ck.writes <= 3, ck.writes
    rt.close()  # the last state is always written at shutdown
    assert ck.writes >= 3


def _sorted(cid: int, t: float, v: float) -> Any:
    from gateway.batching import Sorted

    return Sorted(ReadingBatch(np.array([cid], np.int64), np.array([t]), np.array([v])))


def settings(tmp: Path, **kw: Any) -> Any:
    return load_settings(
        None, store="sqlite", sqlite_path=tmp / "osh.sqlite", profile="eu", mqtt_client_id="gw-t",
        sinks={"sinks": []}, **kw,
    )  # fmt: skip


# ---- open alerts rebuilt from the store's alert log -------------------------------------------
def row(aid: str, event: str, t: float, seq: int | None, **kw: Any) -> dict[str, Any]:
    from alerts.types import rfc3339

    base = {
        "alert_id": aid, "event": event, "severity": "alarm", "rule": "stel", "site": "kop", "zone": "z",
        "device": "d", "hazard": "co", "worker": None, "value": 150.0, "threshold": 100.0, "unit": "ppm",
        "t": rfc3339(t), "since": rfc3339(T0), "profile": "eu", "limit_source": "src", "action": "act",
        "message": "CO high", "by": None, "note": None, "audit_chain": None if seq is None else "gw",
        "audit_seq": seq,
    }  # fmt: skip
    return {**base, **kw}


def rebuilt(rows: list[dict[str, Any]], policy: AlertPolicy | None = None) -> list[Any]:
    scan = OpenScan()
    for r in rows:
        scan.add(r)
    return scan.states(ProfileBook.load().limits, policy or AlertPolicy())


def test_open_follows_the_audit_chain_not_the_time_stamps() -> None:
    """Readings' event time can be hours behind the wall clock of an ack: the chain orders."""
    rows = [
        row("A", "raised", T0, 1),
        row("A", "cleared", T0 + 600, 3, value=10.0),
        row("A", "acknowledged", T0 + 7200, 2, by="J. Doe", note="fans on"),  # wall clock, later
        row("B", "raised", T0, 4, rule="level", severity="warning", threshold=20.0),
    ]
    states = rebuilt(sorted(rows, key=lambda r: r["t"]))
    assert [s.alert_id for s in states] == ["B"]


def test_rebuilt_state_has_ack_escalations_flaps_and_limit_facts() -> None:
    policy = AlertPolicy(escalate_after_s={}, remind_every_s=600.0)
    rows = [
        row("A", "raised", T0, 1),
        row("A", "cleared", T0 + 100, 2, value=80.0),
        row("A", "raised", T0 + 200, 3, value=170.0),
        row("A", "escalated", T0 + 400, 4),
    ]
    (s,) = rebuilt(rows, policy)
    assert (s.flaps, s.escalations, s.acked_by, s.peak) == (1, 1, None, 170.0)
    assert s.deadline_s == T0 + 400 + 600  # the next reminder
    assert s.clear_level == policy.clear_level(next(lim for lim in ProfileBook.load().limits if lim.rule == "stel"
                                                    and lim.hazard == "co" and lim.profile == "eu"))  # fmt: skip
    (acked,) = rebuilt([*rows, row("A", "acknowledged", T0 + 500, 5, by="Ann", note="n")], policy)
    assert (acked.acked_by, acked.ack_note, acked.deadline_s) == ("Ann", "n", None)
    (fresh,) = rebuilt(rows[:1], policy)
    assert fresh.deadline_s == T0 + policy.escalate_after(fresh.severity)


def test_store_log_wins_over_the_checkpoint(tmp_path: Path) -> None:
    """Checkpoint: A open (unacked), X open. Log: A acknowledged, X cleared, B open."""
    store = SqliteStore(tmp_path / "osh.sqlite")
    book = AlertBook()
    ck = Checkpoint(tmp_path / "alerts.json", "this store")
    a, x = rebuilt([row("A", "raised", T0, 1)])[0], rebuilt([row("X", "raised", T0, 2, device="e")])[0]
    book.adopt_log([a, x])
    ck.save(book.snapshot, force=True)
    events = [row("A", "raised", T0, 1), row("X", "raised", T0, 2, device="e"),
              row("A", "acknowledged", T0 + 60, 3, by="Ann"), row("X", "cleared", T0 + 90, 4, device="e"),
              row("B", "raised", T0 + 99, 5, device="f")]  # fmt: skip
    store.write_alert_events([_event(r) for r in events])
    loaded = load_alerts(ck, store, ProfileBook.load().limits, AlertPolicy(), lambda r: True)
    store.close()
    opened = {o.alert_id: o for o in loaded.open_alerts()}
    assert set(opened) == {"A", "B"}
    assert opened["A"].acknowledged_by == "Ann"


def _event(r: dict[str, Any]) -> Any:
    from datetime import datetime

    from alerts.types import AlertEvent
    from rules.types import RuleKind, Severity

    t = datetime.fromisoformat(r["t"]).timestamp()
    return AlertEvent(
        alert_id=r["alert_id"], event=AlertEventKind(r["event"]), severity=Severity(r["severity"]),
        rule=RuleKind(r["rule"]), site=r["site"], zone=r["zone"], device=r["device"], hazard=r["hazard"],
        worker=None, value=r["value"], threshold=r["threshold"], unit=r["unit"], t_s=t, since_s=T0,
        profile=r["profile"], limit_source=r["limit_source"], action=r["action"], message=r["message"],
        by=r["by"], note=r["note"], audit_chain=r["audit_chain"], audit_seq=r["audit_seq"], prev_hash="0", hash="h",
    )  # fmt: skip


def test_status_shows_the_stores_open_alerts_not_another_stores_checkpoint(tmp_path: Path) -> None:
    from gateway.runtime import describe_status

    s = settings(tmp_path, state_dir=tmp_path / "state")
    store = SqliteStore(tmp_path / "osh.sqlite")
    store.write_alert_events([_event(row("IN-STORE", "raised", T0, 1))])
    store.close()
    other = AlertBook()
    other.adopt_log(rebuilt([row("ELSEWHERE", "raised", T0, 1, device="x")]))
    Checkpoint(tmp_path / "state" / "alerts.json", "sqlite /another.sqlite").save(other.snapshot, force=True)
    text = describe_status(s)
    assert "IN-STORE" in text and "ELSEWHERE" not in text
    assert "open alerts: 1 (from the store's alert log)" in text


def test_old_working_directory_state_is_named_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.runtime import _warn_legacy_state_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "oshmon-state" / "spool").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        _warn_legacy_state_dir(influx())
    assert f"{tmp_path / 'oshmon-state'} is no longer used" in caplog.text and "pseudonym.key" in caplog.text


# ---- property: what the log rebuilds is what the live book holds --------------------------------
OPS = st.lists(
    st.tuples(st.sampled_from(["raise", "clear", "ack", "tick"]), st.integers(0, 3), st.floats(1.0, 400.0)),
    max_size=60,
)


@given(OPS)
@hsettings(max_examples=150, deadline=None)
def test_rebuild_from_the_log_matches_the_live_book(ops: list[tuple[str, int, float]]) -> None:
    """Any sequence of raises, clears (with flapping), acks and escalations: the open alerts
    rebuilt from the sealed event log are the live book's, with the same severity,
    acknowledgement, escalations and flaps (what `adopt_log` compares)."""
    from dataclasses import replace as dc_replace

    from alerts.state import AlertSubject
    from rules.types import RuleKind

    policy = AlertPolicy(escalate_after_s={}, remind_every_s=300.0, flap_window_s=600.0)
    book = AlertBook(policy)
    log_rows: list[dict[str, Any]] = []
    now = T0
    for op, dev, dt in ops:
        now += dt
        subject = AlertSubject("kop", "z", f"d{dev}", "device")
        if op == "raise":
            evs = book.raise_health(subject, RuleKind.OFFLINE, t_s=now, now_s=now, message="off")
        elif op == "clear":
            evs = book.clear_health(subject, RuleKind.OFFLINE, t_s=now, now_s=now, message="on")
        elif op == "ack":
            opened = book.open_alert(subject, RuleKind.OFFLINE)
            evs = [] if opened is None else [book.acknowledge(opened.alert_id, f"Ann {len(log_rows)}", None, now)]
        else:
            evs = book.tick(now)
        for ev in evs:
            sealed = dc_replace(ev, audit_chain="gw", audit_seq=len(log_rows))
            log_rows.append(sealed.to_wire())
    scan = OpenScan()
    for r in sorted(log_rows, key=lambda r: r["t"]):  # the store's order: time, not emission
        scan.add(r)
    rebuilt_states = {s.alert_id: s for s in scan.states([], policy)}
    live = {a.alert_id: a for a in book.open_alerts()}
    assert set(rebuilt_states) == set(live)
    for aid, a in live.items():
        s = rebuilt_states[aid]
        assert (s.severity, s.acked_by, s.escalations, s.flaps) == (
            a.severity,
            a.acknowledged_by,
            a.escalations,
            a.flaps,
        )


def test_state_dir_with_another_stores_spooled_batches_refuses_to_start(tmp_path: Path) -> None:
    """Spooled readings of store A must never be replayed into store B (issue 9)."""
    from gateway.state_dir import claim_state_dir
    from rules.errors import ConfigError
    from storage.spool import Spool

    state = tmp_path / "state"
    claim_state_dir(state, "influx v1 http://h:8086 db=a")
    Spool(state / "spool").append(b"a batch for store A")
    claim_state_dir(state, "influx v1 http://h:8086 db=a")  # the same store: fine
    with pytest.raises(ConfigError, match=r"holds spooled batches of another store \(influx v1 http://h:8086 db=a\)"):
        claim_state_dir(state, "influx v1 http://h:8086 db=b")
    empty = tmp_path / "empty"
    claim_state_dir(empty, "sqlite /a.sqlite")
    claim_state_dir(empty, "sqlite /b.sqlite")  # nothing waiting: the directory changes hands
    assert (empty / "store").read_text() == "sqlite /b.sqlite\n"
    assert os.stat(empty / "store").st_mode & 0o777 == 0o600


def test_background_checkpoint_write_keeps_order_and_logs_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ck = Checkpoint(tmp_path / "alerts.json", "s", min_interval_s=0.0)
    for i in range(20):
        ck.save(lambda i=i: {"version": 1, "n": i}, background=True)  # type: ignore[misc]
    ck.save(lambda: {"version": 1, "n": "last"}, force=True)  # shutdown: after the one in flight
    ck.close()
    assert b'"n":"last"' in (tmp_path / "alerts.json").read_bytes()
    (tmp_path / "file").write_text("not a directory")
    bad = Checkpoint(tmp_path / "file" / "alerts.json", "s", min_interval_s=0.0)
    assert bad.save(lambda: {"version": 1}, background=True)  # the loop is not disturbed
    with caplog.at_level(logging.ERROR):
        bad.close()
    assert "not written" in caplog.text
