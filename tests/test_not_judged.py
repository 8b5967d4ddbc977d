"""Hazards measured without a limit in the site's profile raise a `not_judged` configuration alert
(issue 13 point 1): the pure check, the gateway on a real mosquitto, and the demo scenario under
`eu` alone versus the demo's shipped profile."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from alerts.lifecycle import AlertBook
from gateway.config import load_settings
from gateway.coverage import CoverageWatch, log_site_profiles
from gateway.runtime import describe_status
from rules.profiles import ProfileBook, SiteConfig, profile_of_site, unjudged_hazards
from rules.types import ChannelKey, ChannelRegistry, Hazard, RuleKind, Severity
from simulators import MineSpec, scenario, simulate
from tests.mqtt_helpers import Collector, Publisher, gateway, sqlite_gateway_env
from tests.services import Mosquitto

T0 = (int(time.time()) // 86400 - 1) * 86400 + 6 * 3600  # yesterday 06:00 UTC: a shift start
MESSAGE = "CH4 readings from kop-1 are not judged: profile eu has no ch4 limit"


@pytest.fixture(scope="module")
def book() -> ProfileBook:
    return ProfileBook.load()


def test_which_hazards_a_profile_does_not_judge(book: ProfileBook) -> None:
    assert {Hazard.CH4, Hazard.O2} <= set(unjudged_hazards(book, "eu"))
    assert Hazard.CO not in unjudged_hazards(book, "eu")
    assert unjudged_hazards(book, "eu", [Hazard.CO, Hazard.CH4, Hazard.NOISE]) == (Hazard.CH4,)
    for judged_by_default in ("eu-mine", "us-msha"):
        assert not {Hazard.CH4, Hazard.O2} & set(unjudged_hazards(book, judged_by_default))
    assert set(unjudged_hazards(book, "rs-mining")) == set(Hazard) == set(unjudged_hazards(book, "kz-mining"))
    sites = {"kop-2": SiteConfig("kop-2", profile="us-msha"), "kop-3": SiteConfig("kop-3")}
    assert [profile_of_site(sites, "eu", s) for s in ("kop-1", "kop-2", "kop-3")] == ["eu", "us-msha", "eu"]


def test_one_alert_per_site_and_hazard(book: ProfileBook) -> None:
    reg, alerts = ChannelRegistry(), AlertBook()

    def profile_of(site: str) -> str:
        return "us-msha" if site == "kop-2" else "eu"

    watch = CoverageWatch(book, profile_of)
    for key in (
        ChannelKey("kop-1", "face-1", "gd-1", Hazard.CH4),
        ChannelKey("kop-1", "face-1", "gd-1", Hazard.CO),  # judged by eu: no alert
        ChannelKey("kop-2", "face-1", "gd-1", Hazard.CH4),  # judged by us-msha: no alert
    ):
        reg.id_for(key)
    (ev,) = watch.check(reg, alerts, 100.0, t_of=lambda c: 50.0 + c)
    assert (ev.event, ev.severity, ev.rule) == ("raised", Severity.MALFUNCTION, RuleKind.NOT_JUDGED)
    assert (ev.site, ev.zone, ev.device, ev.hazard, ev.profile) == ("kop-1", "profile", "eu", "ch4", "eu")
    assert ev.message == MESSAGE and ev.action and ev.limit_source
    assert ev.t_s == 50.0  # the event time of the channel's reading
    reg.id_for(ChannelKey("kop-1", "face-2", "gd-7", Hazard.CH4))  # another device, same site and hazard
    reg.id_for(ChannelKey("kop-1", "face-2", "pm-1", Hazard.CH4, "w-1001"))
    assert watch.check(reg, alerts, 200.0) == []
    reg.id_for(ChannelKey("kop-3", "z", "d", Hazard.CH4))
    assert [e.site for e in watch.check(reg, alerts, 300.0)] == ["kop-3"]
    # a restart that keeps the open alerts does not raise them again
    again = CoverageWatch(book, profile_of)
    assert again.check(reg, alerts, 400.0) == []


def test_a_new_configuration_clears_what_it_resolves(book: ProfileBook) -> None:
    reg, alerts = ChannelRegistry(), AlertBook()
    reg.id_for(ChannelKey("kop-1", "z", "d", Hazard.CH4))
    reg.id_for(ChannelKey("kop-1", "z", "d", Hazard.H2S))
    CoverageWatch(book, lambda site: "eu").check(reg, alerts, 10.0)
    assert len(alerts.open_alerts()) == 2
    assert CoverageWatch(book, lambda site: "eu").reconcile(alerts, 20.0) == []  # unchanged: stays open
    cleared = CoverageWatch(book, lambda site: "eu-mine").reconcile(alerts, 30.0)
    assert sorted((e.event, e.hazard) for e in cleared) == [("cleared", "ch4"), ("cleared", "h2s")]
    assert "judged now" in next(e.message for e in cleared if e.hazard == "ch4")
    assert "uses profile eu-mine now, which has no h2s limit either" in next(
        e.message for e in cleared if e.hazard == "h2s"
    )
    again = CoverageWatch(book, lambda site: "eu-mine")
    (ev,) = again.check(reg, alerts, 40.0)  # the new profile's own alert for what it still lacks
    assert (ev.hazard, ev.device, ev.event) == ("h2s", "eu-mine", "raised")


def test_start_up_names_each_sites_profile_and_what_it_leaves_unjudged(book: ProfileBook) -> None:
    lines = log_site_profiles(book, "eu", {"kop-2": SiteConfig("kop-2", profile="us-msha")})
    assert lines[0].startswith("kop-2: limit profile us-msha; no limits for co, h2s")
    assert lines[1].startswith("every other site: limit profile eu; no limits for ch4, h2s, no2, no, co2, o2")


def env_for(broker: Mosquitto, tmp: Path, profile: str) -> dict[str, str]:
    return {**sqlite_gateway_env(broker.url, tmp, profile), "OSH_SINKS": '{"sinks": []}'}


@pytest.mark.integration
def test_methane_under_eu_raises_the_configuration_alert(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Issue 13: CH4 at 1.76 %vol under `eu` raised nothing at all. Now: one malfunction alert on
    MQTT (event and retained state), a start-up warning, and `oshmon status` lists it."""
    col = Collector(mosquitto.port, ["osh/kop-1/alerts", "osh/kop-1/alarms/#"])
    pub = Publisher(mosquitto.port)
    env = env_for(mosquitto, tmp_path, "eu")
    try:
        with gateway(env, mosquitto.port, tmp_path / "gw.log") as gw:
            for i in range(30):
                pub.send(
                    "osh/kop-1/face-1/gd-1/data", {"t": T0 + 10 * i, "hazard": "ch4", "value": 1.76, "unit": "%vol"}
                )
            assert col.wait(lambda c: any(a["rule"] == "not_judged" for a in c.json_on("/alerts")), 30), gw.tail()
            assert col.wait(lambda c: any(t.endswith("/alarms/profile/eu/ch4/not_judged") for _, t, _, _ in c.messages))
            time.sleep(1.5)  # more readings, more ticks: still one alert
            pub.send("osh/kop-1/face-2/gd-2/data", {"t": T0 + 400, "hazard": "ch4", "value": 1.8, "unit": "%vol"})
            time.sleep(1.5)
            assert gw.stop() == 0, gw.tail()
        (ev,) = [a for a in col.json_on("/alerts") if a["rule"] == "not_judged"]
        assert (ev["event"], ev["severity"], ev["hazard"], ev["profile"]) == ("raised", "malfunction", "ch4", "eu")
        assert ev["message"] == MESSAGE
        t = datetime.fromisoformat(str(ev["t"]).replace("Z", "+00:00")).timestamp()
        assert T0 <= t <= T0 + 290  # the readings' event time, not the wall clock
        assert not [a for a in col.json_on("/alerts") if a["rule"] == "level"]  # eu really has no methane level
        log = (tmp_path / "gw.log").read_text()
        assert "every other site: limit profile eu; no limits for ch4" in log and MESSAGE in log
        status = describe_status(load_settings(None, sqlite_path=tmp_path / "osh.sqlite", state_dir=tmp_path / "state"))
        assert "not_judged" in status and "kop-1: ch4 (profile eu)" in status
    finally:
        col.close()
        pub.close()


def _demo_run(broker: Mosquitto, tmp: Path, profile: str) -> list[dict[str, object]]:
    """The demo scenario's first 40 min of mine time (methane rises from +10 min), one site."""
    msgs = simulate(MineSpec(sites=1), scenario("demo"), T0, 40 * 60.0, interval_s=20.0, seed=1)
    col = Collector(broker.port, ["osh/kop-1/alerts"])
    pub = Publisher(broker.port)
    try:
        with gateway(env_for(broker, tmp, profile), broker.port, tmp / "gw.log") as gw:
            for m in msgs:
                pub.send(m.topic, m.payload, m.qos, m.retain, wait=False)
            pub.send("osh/kop-1/z/sync/data", b"{sync", wait=True)
            ok = col.wait(lambda c: any(a["hazard"] == "ch4" for a in c.json_on("/alerts")), 60)
            time.sleep(2.0)
            assert ok, gw.tail()
            assert gw.stop() == 0, gw.tail()
        return col.json_on("/alerts")
    finally:
        col.close()
        pub.close()


@pytest.mark.integration
def test_demo_scenario_under_eu_alone_raises_not_judged(mosquitto: Mosquitto, tmp_path: Path) -> None:
    alerts = _demo_run(mosquitto, tmp_path, "eu")
    ch4 = [a for a in alerts if a["hazard"] == "ch4"]
    assert {(a["rule"], a["severity"]) for a in ch4} == {("not_judged", "malfunction")}
    assert {a["hazard"] for a in alerts if a["rule"] == "not_judged"} >= {"ch4", "o2"}


@pytest.mark.integration
def test_demo_scenario_under_its_shipped_profile_judges_methane(mosquitto: Mosquitto, tmp_path: Path) -> None:
    from gateway.demo import DEMO_PROFILE

    alerts = _demo_run(mosquitto, tmp_path, DEMO_PROFILE)
    raised = {(a["rule"], a["severity"]) for a in alerts if a["hazard"] == "ch4" and a["event"] == "raised"}
    assert ("level", "alarm") in raised or ("level", "critical") in raised
    assert not [a for a in alerts if a["rule"] == "not_judged" and a["hazard"] in ("ch4", "o2")]


@pytest.mark.integration
def test_restart_raises_nothing_twice_and_a_profile_that_judges_clears(mosquitto: Mosquitto, tmp_path: Path) -> None:
    col = Collector(mosquitto.port, ["osh/kop-1/alerts"])
    pub = Publisher(mosquitto.port)
    reading = {"t": T0, "hazard": "ch4", "value": 0.4, "unit": "%vol"}
    try:
        for n, profile in enumerate(("eu", "eu", "eu-mine")):
            env = {**env_for(mosquitto, tmp_path, profile), "OSH_MQTT_CLIENT_ID": "gw-restart"}
            with gateway(env, mosquitto.port, tmp_path / f"gw{n}.log") as gw:
                pub.send("osh/kop-1/face-1/gd-1/data", {**reading, "t": T0 + 10 * n})
                time.sleep(2.5)  # a batch and two ticks
                assert gw.stop() == 0, gw.tail()
        events = [(a["event"], a["profile"]) for a in col.json_on("/alerts") if a["rule"] == "not_judged"]
        assert events == [("raised", "eu"), ("cleared", "eu")], events
        cleared = next(a for a in col.json_on("/alerts") if a["event"] == "cleared")
        assert "judged now: profile eu-mine" in cleared["message"]
    finally:
        col.close()
        pub.close()


def test_limits_of_a_profile_without_numbers_says_so(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "80", "OSH_SQLITE_PATH": str(tmp_path / "x.sqlite")}
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "limits", "--profile", "kz-mining"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent, check=True,
    ).stdout  # fmt: skip
    assert "sets no limit" in out and "not_judged" in out
    assert max(len(line) for line in out.splitlines()) <= 80
