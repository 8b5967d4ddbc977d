"""The board's web API on Starlette's test client (no broker: `publish` records what would be sent),
its sign-in, sessions, CSRF and roles, and the pure parts (state, throttle, users, running exposure)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from board.app import Board, BoardConfig, build_app
from board.auth import LoginThrottle
from board.live import Reference, judge_level, shift_so_far
from board.state import BoardState
from board.text import UI, pick_language, ui_strings
from board.users import Role, UsersFile
from rules.errors import ConfigError

ALARM = {
    "alert_id": "01ABC", "site": "kop-1", "zone": "north", "device": "gd-7", "worker": None, "hazard": "ch4",
    "rule": "level", "severity": "critical", "value": 1.6, "threshold": 1.5, "unit": "%vol",
    "since": "2026-11-30T07:00:00Z", "acknowledged_by": None, "action": "Withdraw", "limit_source": "30 CFR 75.323",
    "message": "CH4 1.6 %vol", "state": "active",
}  # fmt: skip
TOPIC = "osh/kop-1/alarms/north/gd-7/ch4/level"


class Harness:
    def __init__(self, tmp: Path, public_read: bool = False) -> None:
        self.state = BoardState("osh")
        self.state.on_connection(True)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.users = UsersFile(tmp / "users.json")
        self.users.add("J. Petrović", "correct horse battery", Role.OFFICER)
        self.users.add("viewer1", "viewer password", Role.VIEWER)

        async def publish(topic: str, payload: bytes) -> None:
            self.sent.append((topic, orjson.loads(payload)))

        def snapshot() -> dict[str, Any]:
            return {"alarms": self.state.active_alarms(), "connected": self.state.connected}

        config = BoardConfig(public_read, "k" * 64, 12.0, False, "osh")
        self.client = TestClient(build_app(Board(config, self.state, self.users, snapshot, publish, LoginThrottle())))

    def login(self, name: str, password: str) -> str:
        r = self.client.post("/login", data={"username": name, "password": password}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = self.client.get("/").text
        token = re.search(r'data-csrf="([^"]+)"', page)
        assert token
        return token.group(1)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    harness.state.on_message(TOPIC, orjson.dumps(ALARM), True)
    return harness


def test_reading_needs_a_session_unless_public(h: Harness, tmp_path: Path) -> None:
    assert h.client.get("/api/alarms").status_code == 401
    assert h.client.get("/", follow_redirects=False).headers["location"] == "/login"
    public = Harness(tmp_path / "p", public_read=True)
    public.state.on_message(TOPIC, orjson.dumps(ALARM), True)
    [alarm] = public.client.get("/api/alarms").json()
    assert alarm["alert_id"] == "01ABC" and alarm["acknowledged_by"] is None
    assert set(alarm) == {
        "alert_id", "site", "zone", "device", "worker", "hazard", "rule", "severity", "value", "threshold",
        "unit", "since", "acknowledged_by", "action", "limit_source", "message",
    }  # fmt: skip
    assert public.client.post("/api/alarms/01ABC/ack", json={"note": "x"}).status_code == 401  # reads only


def test_alarms_filter_by_site_and_healthz(h: Harness) -> None:
    h.login("viewer1", "viewer password")
    assert len(h.client.get("/api/alarms?site=kop-1").json()) == 1
    assert h.client.get("/api/alarms?site=kop-2").json() == []
    assert h.client.get("/healthz").status_code == 200
    h.state.on_connection(False)
    assert h.client.get("/healthz").status_code == 503


def test_session_cookie_flags(h: Harness) -> None:
    r = h.client.post("/login", data={"username": "J. Petrović", "password": "correct horse battery"},
                      follow_redirects=False)  # fmt: skip
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=43200" in cookie
    assert "secure" not in cookie  # plain HTTP here; BoardConfig(tls=True) adds Secure


def test_officer_acknowledges_as_the_signed_in_user(h: Harness) -> None:
    token = h.login("J. Petrović", "correct horse battery")
    r = h.client.post("/api/alarms/01ABC/ack", json={"note": "fan 3 restarted", "by": "Chief Inspector Forged"},
                      headers={"X-CSRF-Token": token})  # fmt: skip
    assert r.status_code == 202, r.text
    [(topic, msg)] = h.sent
    assert topic == "osh/kop-1/ack"
    assert {k: msg[k] for k in ("alert_id", "by", "note")} == {"alert_id": "01ABC", "by": "J. Petrović",
                                                               "note": "fan 3 restarted"}  # fmt: skip
    assert abs(msg["t"] - time.time()) < 60 and len(msg["ack_id"]) == 24


def test_ack_refusals(h: Harness) -> None:
    assert h.client.post("/api/alarms/01ABC/ack", json={"note": ""}).status_code == 401
    token = h.login("J. Petrović", "correct horse battery")
    assert h.client.post("/api/alarms/01ABC/ack", json={}).status_code == 403  # no CSRF token
    assert h.client.post("/api/alarms/01ABC/ack", json={}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert h.client.post("/api/alarms/NOPE/ack", json={}, headers={"X-CSRF-Token": token}).status_code == 404
    h.state.on_message(TOPIC, b"", True)  # cleared
    assert h.client.post("/api/alarms/01ABC/ack", json={}, headers={"X-CSRF-Token": token}).status_code == 404
    assert h.sent == []


def test_viewer_cannot_acknowledge(h: Harness) -> None:
    token = h.login("viewer1", "viewer password")
    r = h.client.post("/api/alarms/01ABC/ack", json={"note": "x"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and h.sent == []


def test_failed_sign_ins_are_throttled(h: Harness) -> None:
    for _ in range(5):
        r = h.client.post("/login", data={"username": "J. Petrović", "password": "guess"})
        assert r.status_code == 401
    r = h.client.post("/login", data={"username": "J. Petrović", "password": "correct horse battery"})
    assert r.status_code == 429


def test_security_headers_and_escaping(h: Harness) -> None:
    h.login("viewer1", "viewer password")
    r = h.client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert '<script src="/static/board.js"' in r.text
    assert not re.search(r'(src|href)="(https?:)?//', r.text), "every asset is served by the board itself"
    js = h.client.get("/static/board.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js  # device text is only ever textContent


def test_state_resynchronises_on_reconnect() -> None:
    st = BoardState("osh")
    st.on_connection(True)
    st.on_message(TOPIC, orjson.dumps(ALARM), True)
    assert [a["alert_id"] for a in st.active_alarms()] == ["01ABC"]
    st.on_connection(False)
    assert st.active_alarms(), "kept (marked stale) while the broker is away"
    st.on_connection(True)  # the alarm cleared meanwhile: the broker redelivers nothing for it
    assert st.active_alarms() == []


def test_state_sorts_by_severity_then_newest_and_flags_unsigned_events() -> None:
    st = BoardState("osh")
    cases = [("warning", "T3"), ("critical", "T1"), ("critical", "T2"), ("malfunction", "T4")]
    for i, (sev, since) in enumerate(cases):
        st.on_message(f"osh/s/alarms/z/d{i}/co/level", orjson.dumps({**ALARM, "alert_id": f"a{i}",
                      "severity": sev, "since": since}), True)  # fmt: skip
    assert [a["alert_id"] for a in st.active_alarms()] == ["a2", "a1", "a0", "a3"]
    st.on_message("osh/s/alerts", orjson.dumps({"alert_id": "x", "event": "raised"}), False)
    st.on_message("osh/s/alerts", orjson.dumps({"alert_id": "y", "event": "raised", "hash": "h", "audit_chain": "gw"}),
                  False)  # fmt: skip
    assert [e["signed"] for e in st.events] == [True, False]


def test_users_file_hashes_with_argon2_and_is_private(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "u.json")
    users.add("anna", "a long enough password", Role.OFFICER)
    raw = (tmp_path / "u.json").read_text()
    assert "$argon2id$" in raw and "a long enough password" not in raw
    assert (tmp_path / "u.json").stat().st_mode & 0o777 == 0o600
    assert users.verify("anna", "a long enough password") is not None
    assert users.verify("anna", "wrong") is None and users.verify("nobody", "x") is None
    with pytest.raises(ConfigError, match="too short"):
        users.add("bob", "short", Role.VIEWER)
    with pytest.raises(ConfigError, match="user name"):
        users.add("<script>", "a long enough password", Role.VIEWER)


def test_throttle_window() -> None:
    now = [0.0]
    t = LoginThrottle(clock=lambda: now[0], max_failures=3, window_s=60)
    for _ in range(3):
        t.failed("1.2.3.4", "anna")
    assert t.blocked_for("1.2.3.4", "anna") == pytest.approx(60)
    assert t.blocked_for("5.6.7.8", "anna") > 0  # per name as well as per client
    now[0] = 61
    assert t.blocked_for("1.2.3.4", "anna") == 0


def test_running_exposure_matches_spec_semantics() -> None:
    """Hold each reading until the next (max_gap 60 s): 100 ppm for 1 h then 0 → 12.5 ppm TWA so far;
    projected at the same mean to the shift end."""
    start = 0.0
    t = np.arange(0, 3600, 10, dtype=np.float64)
    v = np.full(t.size, 100.0)
    now = 3600.0
    got = shift_so_far(t, v, (start, 8 * 3600.0, "2026-11-30/1"), now, 60.0, noise=False)
    assert got.twa8 == pytest.approx(100.0 / 8)
    assert got.twa8_projected == pytest.approx(100.0)
    gap = shift_so_far(np.array([0.0, 600.0]), np.array([100.0, 100.0]), (0.0, 28800.0, "s"), 660.0, 60.0, False)
    assert gap.twa8 == pytest.approx(100.0 * 120 / 28800)  # 60 s + 60 s held; the 540 s gap is not exposure
    noise = shift_so_far(t, np.full(t.size, 85.0), (start, 28800.0, "s"), now, 60.0, noise=True)
    assert noise.lex8h == pytest.approx(85.0 + 10 * np.log10(1 / 8))  # 1 h at 85 dBA = 76.0 dB(A) LEX,8h
    assert noise.lex8h_projected == pytest.approx(85.0)


def test_level_judgement_never_shows_an_unjudged_hazard_as_safe() -> None:
    assert judge_level(5.0, None) == "not_judged"
    above = Reference(1.0, "level", "level", "above", "src", (("alarm", 1.0), ("critical", 1.5)))
    assert [judge_level(v, above) for v in (0.5, 1.0, 1.6)] == ["ok", "alarm", "critical"]
    below = Reference(19.5, "O2", "level", "below", "src", (("alarm", 19.5),))
    assert [judge_level(v, below) for v in (20.9, 19.0)] == ["ok", "alarm"]
    assert judge_level(50.0, Reference(25.0, "TWA", "twa", "above", "src")) == "averaged"


def test_every_ui_string_is_translated() -> None:
    assert pick_language("sr", None, None) == "sr"
    assert pick_language(None, None, "ru-RU,ru;q=0.9") == "ru"
    assert pick_language("xx", None, "de") == "en"
    for lang in ("sr", "ru"):
        strings = ui_strings(lang)
        same = [k for k, v in strings.items() if v == UI[k] and not UI[k].startswith(("LEX", "alarm"))]
        assert not same, f"{lang}: untranslated {same}"


def test_personal_monitor_on_a_shift_average_limit(tmp_path: Path) -> None:
    """us-msha respirable coal dust is judged on the shift average (30 CFR 70.100): 1.4 mg/m3 for the
    first 5 h of a 10-h shift is 0.7 so far and 1.4 projected, not 1.75 (= ÷ 8 h) against 1.5."""
    from board.live import StoreView
    from rules.profiles import ProfileBook
    from rules.shifts import ShiftCalendar, SiteConfig
    from rules.types import ChannelKey, Hazard, ReadingBatch
    from storage.sqlite import SqliteStore

    site = SiteConfig("kop-1", shift_starts=("06:00", "18:00"), shift_hours=10.0)
    seg = ShiftCalendar(site).segment_at(time.time() - 12 * 3600)
    now = seg.start_s + 5 * 3600
    store = SqliteStore(tmp_path / "osh.sqlite")
    t = np.arange(seg.start_s, now, 10.0)
    key = ChannelKey("kop-1", "face-1", "pdm-1", Hazard.RESPIRABLE_DUST, "w-7")
    store.write_readings([key], ReadingBatch(np.zeros(t.size, np.int64), t, np.full(t.size, 1.4)))
    view = StoreView(open_store=lambda: store, book=ProfileBook.load(), profile_of=lambda s: "us-msha",
                     site_config=lambda s: site, max_gap_s=60.0)  # fmt: skip
    view._store = store
    latest = {("kop-1", "face-1", "pdm-1", "respirable_dust", "w-7"): {}}
    [m] = view._monitors(store, latest, now)
    assert m["averaging"] == "shift" and m["limit"] == 1.5
    assert m["twa8"] == pytest.approx(0.7, rel=1e-3) and m["twa8_projected"] == pytest.approx(1.4, rel=1e-3)
    store.close()


def test_the_board_checks_an_events_seal_against_the_store(tmp_path: Path) -> None:
    """A live event counts as the gateway's only when the store (which only the gateway writes)
    holds its chain position with the same hash (alerts.signed.is_signed_by_gateway)."""
    from dataclasses import replace

    from alerts.audit import AuditChain
    from alerts.types import AlertEvent, AlertEventKind
    from board.verify import EventVerifier
    from rules.types import RuleKind, Severity
    from storage.sqlite import SqliteStore

    t0 = float(int(time.time()) - 60)
    ev = AlertEvent("a1", AlertEventKind.RAISED, Severity.CRITICAL, RuleKind.LEVEL, "kop-1", "z1", "d1", "ch4",
                    None, 1.6, 1.5, "%vol", t0, t0, "us-msha", "30 CFR 75.323", "Withdraw", "CH4 1.6 %vol",
                    audit_chain="gw-1")  # fmt: skip
    link = AuditChain().append(ev)
    sealed = replace(ev, audit_seq=link.audit_seq, prev_hash=link.prev_hash, hash=link.hash)
    store = SqliteStore(tmp_path / "osh.sqlite")
    store.write_alert_events([sealed])
    store.close()
    verifier = EventVerifier(lambda: SqliteStore(tmp_path / "osh.sqlite"), lambda: None)
    wire = orjson.loads(orjson.dumps(sealed.to_wire()))
    assert verifier.check(wire) == ""
    assert "content does not match" in verifier.check({**wire, "value": 0.2})
    other = AuditChain()
    other.append(replace(ev, alert_id="x"))  # someone else's self-consistent chain
    fake = replace(ev, alert_id="fake", audit_seq=1)
    link2 = other.append(fake)
    forged = orjson.loads(orjson.dumps(replace(fake, prev_hash=link2.prev_hash, hash=link2.hash).to_wire()))
    assert "never published" in verifier.check(forged)
    verifier.close()
