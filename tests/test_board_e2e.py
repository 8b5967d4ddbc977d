"""The board end to end in headless Chromium: real mosquitto + `oshmon run` + `oshmon board`.

A CH4 reading of 1.6 %vol under `us-msha` raises a critical alarm that is on the page within 1 s
of the gateway's `raised` event; an officer signs in, acknowledges with a note, the gateway
publishes the acknowledgement under the signed-in name and the page shows it; readings fall and
the alarm leaves the page; a device id made of HTML renders as text; a viewer cannot acknowledge.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chromium import Page, chromium_or_skip, headless_page
from tests.mqtt_helpers import ROOT, Collector, Publisher, gateway
from tests.services import Mosquitto, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PREFIX = "e2e"  # a prefix of its own: the session broker carries other tests' retained alarms
OFFICER, OFFICER_PW = "J. Petrović", "correct horse battery"
VIEWER, VIEWER_PW = "viewer1", "viewer password 1"
XSS = "<img src=x onerror=alert(1)>"
#: Records when each alarm element first appears in the page (browser clock = this machine's clock).
SEEN_OBSERVER = (
    "window.__seen = {}; new MutationObserver(() => { for (const e of document.querySelectorAll('[data-alert-id]'))"
    " window.__seen[e.dataset.alertId] ??= Date.now(); }).observe(document.body, {subtree: true, childList: true});"
)


@contextlib.contextmanager
def board_process(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "board"], env={**os.environ, **env}, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        end = time.time() + 60
        while time.time() < end:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"board never became healthy: {log.read_text()[-3000:]}")
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def add_user(env: dict[str, str], name: str, password: str, role: str) -> None:
    r = subprocess.run([sys.executable, "-m", "gateway", "board", "user", "add", name, "--role", role,
                        "--password-stdin"], input=password + "\n", env={**os.environ, **env}, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr


def sign_in(page: Page, base: str, name: str, password: str) -> None:
    page.call("Page.navigate", url=f"{base}/login")
    page.wait_event("Page.loadEventFired")
    page.evaluate(f"document.getElementById('username').value = {name!r};"
                  f"document.getElementById('password').value = {password!r}; document.forms[0].submit()")  # fmt: skip
    page.wait_event("Page.loadEventFired")
    wait_for(page, "document.getElementById('alarms') !== null && !document.querySelector('#alarms .empty') "
                   "|| document.querySelector('#alarms .empty')?.textContent !== '…'")  # fmt: skip


def wait_for(page: Page, expression: str, timeout: float = 15.0) -> Any:
    end = time.time() + timeout
    while time.time() < end:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"never true in the page: {expression}")


def reading(t: float, value: float, device: str = "gd-7") -> tuple[str, dict[str, Any]]:
    return f"{PREFIX}/kop-1/north/{device}/data", {"t": t, "hazard": "ch4", "value": value, "unit": "%vol"}


def test_board_end_to_end(mosquitto: Mosquitto, tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    port = free_port()
    env = {
        "OSH_MQTT_URL": mosquitto.url, "OSH_TOPIC_PREFIX": PREFIX, "OSH_PROFILE": "us-msha",
        "OSH_SQLITE_PATH": str(tmp_path / "e2e.sqlite"), "OSH_MQTT_CLIENT_ID": "e2e-gw",
        "OSH_BOARD_LISTEN": f"127.0.0.1:{port}", "OSH_BOARD_REFRESH_S": "1",
        "OSH_ALERTS": '{"clear_hold_s": 5}',
    }  # fmt: skip
    add_user(env, OFFICER, OFFICER_PW, "officer")
    add_user(env, VIEWER, VIEWER_PW, "viewer")
    alerts = Collector(mosquitto.port, [f"{PREFIX}/+/alerts"])
    pub = Publisher(mosquitto.port)
    with (
        gateway(env, mosquitto.port, tmp_path / "gw.log", prefix=PREFIX),
        board_process(env, port, tmp_path / "board.log") as base,
        headless_page(chromium, tmp_path / "chromium") as page,
    ):
        sign_in(page, base, OFFICER, OFFICER_PW)
        page.evaluate(SEEN_OBSERVER)
        t0 = time.time()
        for i in range(3):
            pub.send(*reading(t0 + i, 1.6))
        assert alerts.wait(lambda c: any(e["event"] == "raised" for e in c.json_on("/alerts")), 30)
        raised = next(e for e in alerts.json_on("/alerts") if e["event"] == "raised")
        raised_at = next(at for at, _t, p, _r in alerts.messages if raised["alert_id"].encode() in p)
        seen_ms = wait_for(page, f"window.__seen[{raised['alert_id']!r}]", 10)
        assert seen_ms / 1000 - raised_at <= 1.0, f"alarm on the page {seen_ms / 1000 - raised_at:.2f} s after MQTT"
        card = f"document.querySelector('[data-alert-id=\"{raised['alert_id']}\"]')"
        assert page.evaluate(f"{card}.dataset.severity") == "critical"
        text = page.evaluate(f"{card}.textContent")
        assert "30 CFR 75.323" in text and "Withdraw" in text  # legal source and action shown

        # acknowledge in the page, as the signed-in officer
        page.evaluate(f"{card}.querySelector('button.ack').click()")
        page.evaluate("document.getElementById('ack-note').value = 'fan 3 restarted';"
                      "document.getElementById('ack-send').click()")  # fmt: skip
        assert alerts.wait(lambda c: any(e["event"] == "acknowledged" for e in c.json_on("/alerts")), 15)
        ack = next(e for e in alerts.json_on("/alerts") if e["event"] == "acknowledged")
        assert ack["by"] == OFFICER and ack["note"] == "fan 3 restarted"
        wait_for(page, f"{card} && {card}.textContent.includes({OFFICER!r})")

        # HTML in a device id (a status message straight from the broker) renders as text
        pub.send(f"{PREFIX}/kop-1/north/{XSS}/status", {"state": "online"}, retain=True)
        wait_for(page, f"document.getElementById('zones').textContent.includes({XSS!r})")
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert not [p for p in page.problems() if "exception" in p]

        # readings fall: the alarm clears and leaves the page
        # readings fall, arriving over a second as a sensor's would (the engine judges one row per
        # channel and batch: readings that all land in one batch clear only with the next one)
        for i in range(3, 15):
            pub.send(*reading(t0 + i, 0.2))
            time.sleep(0.1)
        wait_for(page, f"{card} === null", 20)
        page.screenshot(tmp_path / "board.png")

        # a viewer sees the board but cannot acknowledge
        page.evaluate("document.querySelector('form.inline button').click()")  # sign out
        page.wait_event("Page.loadEventFired")
        for i in range(15, 18):
            pub.send(*reading(t0 + i, 1.6, device="gd-8"))
        sign_in(page, base, VIEWER, VIEWER_PW)
        wait_for(page, "document.querySelector('[data-alert-id]') !== null", 15)
        assert page.evaluate("document.querySelector('button.ack')") is None
        alert_id = page.evaluate("document.querySelector('[data-alert-id]').dataset.alertId")
        res = page.call(
            "Runtime.evaluate",
            awaitPromise=True,
            returnByValue=True,
            expression=(
                f"fetch('/api/alarms/{alert_id}/ack', {{method: 'POST', headers: {{'Content-Type': 'application/json', "
                "'X-CSRF-Token': document.body.dataset.csrf}, body: '{\"note\": \"x\"}'}).then(r => r.status)"
            ),
        )
        assert res["result"]["value"] == 403
        page.screenshot(tmp_path / "board-viewer.png")
    pub.send(f"{PREFIX}/kop-1/north/{XSS}/status", b"", retain=True)
    pub.close()
    alerts.close()


def test_board_follows_a_broker_restart(tmp_path: Path) -> None:
    """The broker restarts and loses its retained messages (its persistence file is gone): the board
    says so (/healthz 503), reconnects by itself and rebuilds its alarms from the retained states —
    which the gateway asserts again on its new connection, so the open alarm is back."""
    from tests.services import run_mosquitto

    port = free_port()
    with run_mosquitto() as broker:
        env = {
            "OSH_MQTT_URL": broker.url, "OSH_TOPIC_PREFIX": PREFIX, "OSH_PROFILE": "us-msha",
            "OSH_SQLITE_PATH": str(tmp_path / "r.sqlite"), "OSH_MQTT_CLIENT_ID": "e2e-gw-r",
            "OSH_BOARD_LISTEN": f"127.0.0.1:{port}", "OSH_BOARD_PUBLIC_READ": "true",
        }  # fmt: skip
        pub = Publisher(broker.port)
        with gateway(env, broker.port, tmp_path / "gw.log", prefix=PREFIX), \
                board_process(env, port, tmp_path / "board.log") as base:  # fmt: skip
            t0 = time.time()
            for i in range(3):
                pub.send(*reading(t0 + i, 1.6))

            def alarm_ids() -> list[str]:
                with contextlib.suppress(httpx.HTTPError):
                    return [a["alert_id"] for a in httpx.get(base + "/api/alarms", timeout=5).json()]
                return []

            end = time.time() + 20
            while not alarm_ids() and time.time() < end:
                time.sleep(0.2)
            before = alarm_ids()
            assert before, "the alarm never reached the board"
            pub.close()
            broker.stop()
            (broker.dir / "mosquitto.db").unlink(missing_ok=True)  # the retained alarm states are gone
            end = time.time() + 20
            while httpx.get(base + "/healthz", timeout=5).status_code != 503 and time.time() < end:
                time.sleep(0.2)
            assert httpx.get(base + "/healthz", timeout=5).status_code == 503
            broker.start()
            end = time.time() + 60
            while httpx.get(base + "/healthz", timeout=5).status_code != 200 and time.time() < end:
                time.sleep(0.5)
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200
            end = time.time() + 20
            while alarm_ids() != before and time.time() < end:
                time.sleep(0.2)
            assert alarm_ids() == before  # the gateway asserted its open alarm again; the board rebuilt it
