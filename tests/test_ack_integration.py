"""Acknowledgements on a real mosquitto and a real `oshmon run` (issue 15 point 1, issue 13
point 7): forged acks on another site's topic or a nonexistent site's refused with a dead letter,
a replayed ack gives one event, an ack of a cleared alert is refused, and `oshmon ack` with the
gateway down says the ack is queued; the gateway applies it on its return, stamped with the
officer's time, not the restart time."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from alerts.types import rfc3339
from storage.base import RecordKind
from tests.mqtt_helpers import Collector
from tests.services import Mosquitto
from tests.test_alerts_integration import Rig, kinds, oshmon, rig, t0

pytestmark = pytest.mark.integration


def dead_letters(col: Collector, match: str) -> list[dict[str, Any]]:
    return [d for d in col.json_on("/deadletter") if match in str(d.get("error"))]


def raise_alarm(r: Rig, device: str) -> str:
    r.data(device, t0(), 1.3)
    aid = str(r.wait_event(event="raised", device=device)["alert_id"])
    assert r.col.wait(lambda _: bool(r.stored(RecordKind.ALERTS, device=device)), 10)
    return aid


def test_forged_replayed_and_late_acks_are_refused(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site = "ack-a"
    sites = f"{site},ack-other,nonexistent-site,probe"  # the gateway listens on every one of these ack topics
    dead = Collector(mosquitto.port, ["osh/deadletter"])
    try:
        with rig(mosquitto, tmp_path, site, SERVE_SITES=sites, ALERTS={"clear_hold_s": 1}) as r:
            aid = raise_alarm(r, "ch4-1")
            forged = {"alert_id": aid, "by": "Chief Inspector Forged"}
            r.pub.send("osh/ack-other/ack", forged)
            r.pub.send("osh/nonexistent-site/ack", forged)
            assert dead.wait(lambda c: len(dead_letters(c, f"belongs to site '{site}'")) == 2, 30), dead.messages
            r.pub.send(f"osh/{site}/ack", {"alert_id": "01NOSUCHALERT0000000000000", "by": "Ana"})
            assert dead.wait(lambda c: bool(dead_letters(c, "unknown alert id")), 30)

            ack = {"alert_id": aid, "by": "Ana Horvat", "note": "fan restarted"}
            for _ in range(3):
                r.pub.send(f"osh/{site}/ack", ack)
            assert dead.wait(lambda c: len(dead_letters(c, "duplicate acknowledgement")) == 2, 30), dead.messages
            r.wait_event(event="acknowledged", alert_id=aid, timeout=30)  # published after the dead letters
            time.sleep(1.0)
            assert [e["by"] for e in r.events(alert_id=aid, event="acknowledged")] == ["Ana Horvat"]

            r.paced("ch4-1", [(t0() + 10 + i, 0.2) for i in range(4)])  # below the limit: clears
            r.wait_event(event="cleared", alert_id=aid, timeout=30)
            r.pub.send(f"osh/{site}/ack", {"alert_id": aid, "by": "Bo", "note": "late"})
            assert dead.wait(lambda c: bool(dead_letters(c, "was cleared at")), 30)
            time.sleep(1.0)
            assert kinds(r.events(alert_id=aid)) == ["raised", "acknowledged", "cleared"]
            stored = [row["event"] for row in r.stored(RecordKind.ALERTS, device="ch4-1")]
            assert sorted(stored) == ["acknowledged", "cleared", "raised"]
    finally:
        dead.close()


def test_ack_while_the_gateway_is_down_is_queued_and_keeps_the_officers_time(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with rig(mosquitto, tmp_path, "ack-q") as r:
        aid = raise_alarm(r, "ch4-2")
        assert r.gw.stop() == 0

        done = oshmon(r.env, "ack", aid, "--by", "M. Ortiz", "--note", "fan 2 restarted", "--wait", "1")
        assert done.returncode == 0 and done.stdout.startswith("queued:"), (done.stdout, done.stderr)
        assert "Do not acknowledge again" in done.stdout and len(done.stdout.strip().splitlines()) == 1
        stamped = re.search(r"stamped (\S+),", done.stdout)
        assert stamped is not None
        time.sleep(2.0)

        restarted_at = time.time()
        r.gw.start(mosquitto.port)  # same client id: the broker kept the ack for the persistent session
        acked = r.wait_event(event="acknowledged", alert_id=aid)
        assert acked["t"] == stamped.group(1), (acked, done.stdout)
        assert acked["t"] < rfc3339(restarted_at) and acked["by"] == "M. Ortiz"
        assert "the gateway received it at" in acked["message"]

        again = oshmon(r.env, "ack", aid, "--by", "M. Ortiz", "--note", "fan 2 restarted")
        assert again.returncode == 0 and again.stdout.startswith("already acknowledged"), again.stdout
        time.sleep(1.0)
        assert kinds(r.events(alert_id=aid)) == ["raised", "acknowledged"]


def test_ack_with_site_goes_out_while_the_store_cannot_be_read(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with rig(mosquitto, tmp_path, "ack-s") as r:
        aid = raise_alarm(r, "ch4-3")
        wrong_site = oshmon(r.env, "ack", aid, "--by", "Ana", "--site", "ack-other")
        assert wrong_site.returncode == 2 and "is an alert of site 'ack-s'" in wrong_site.stderr
        no_store = {**r.env, "OSH_SQLITE_PATH": str(tmp_path / "elsewhere.db")}
        refused = oshmon(no_store, "ack", aid, "--by", "Ana")
        assert refused.returncode == 1 and "--site" in refused.stderr
        done = oshmon(no_store, "ack", aid, "--by", "Ana", "--site", "ack-s")
        assert done.returncode == 0 and done.stdout.startswith(f"acknowledged {aid}"), (done.stdout, done.stderr)
        assert "unchecked" in done.stderr and not (tmp_path / "elsewhere.db").exists()
