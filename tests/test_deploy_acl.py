"""The shipped broker ACL (deploy/aclfile) on Debian's real mosquitto: each account may do its job only.

The broker runs the shipped deploy/mosquitto.conf (paths moved into a temporary directory) with
a password file generated here. A read-only monitor account watches everything; a publish that
the ACL forbids must never reach it, an allowed one must.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt_helpers import GatewayProcess
from tests.services import free_port, require, wait_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-for-tests"
ACCOUNTS = ["oshmon-gateway", "oshmon-board", "officer-duty", "oshmon-monitor", "logger-kop-1", "logger-kop-2"]


def acl_users() -> set[str]:
    return set(re.findall(r"^user (\S+)", (ROOT / "deploy" / "aclfile").read_text(), re.M))


@contextlib.contextmanager
def acl_broker() -> Iterator[int]:
    binary = require("mosquitto", "mosquitto")
    d = Path(tempfile.mkdtemp(prefix="osh-acl-"))
    d.chmod(0o777)
    passwd = d / "passwd"
    for i, user in enumerate(ACCOUNTS):
        flags = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *flags, "-b", str(passwd), user, PASSWORD], check=True)
    passwd.chmod(0o644)
    port = free_port()
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    conf = re.sub(r"^listener \d+.*$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    conf = conf.replace("/mosquitto/config/passwd", str(passwd))
    conf = conf.replace("/mosquitto/config/aclfile", str(ROOT / "deploy" / "aclfile"))
    conf = conf.replace("/mosquitto/data/", f"{d}/")
    (d / "mosquitto.conf").write_text(conf)
    with (d / "mosquitto.log").open("ab") as log:
        proc = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    def __init__(self, port: int, user: str, topics: list[str] | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.time_ns()}")
        self.c.username_pw_set(user, PASSWORD)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self._ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if topics:
            self.c.subscribe([(t, 1) for t in topics])
            assert self._ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        # mosquitto answers a forbidden QoS 1 publish with a normal PUBACK and drops it (MQTT 3.1.1)
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def seen(self, payload: bytes) -> bool:
        with self._lock:
            return any(p == payload for _t, p, _r in self.messages)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


# (account, topic, allowed)
CASES = [
    ("logger-kop-1", "osh/kop-1/z1/gd-1/data", True),
    ("logger-kop-1", "osh/kop-1/z1/gd-1/status", True),
    ("logger-kop-1", "osh/kop-2/z1/gd-1/data", False),  # another site's data
    ("logger-kop-1", "osh/kop-1/alerts", False),  # fake alert events
    ("logger-kop-1", "osh/kop-1/alarms/z1/gd-1/co/stel", False),  # clear/forge a retained alarm
    ("logger-kop-1", "osh/kop-1/ack", False),  # acknowledge an alert
    ("logger-kop-1", "osh/deadletter", False),
    ("logger-kop-2", "osh/kop-2/z9/nd-1/data", True),
    ("oshmon-board", "osh/kop-1/ack", True),
    ("oshmon-board", "osh/kop-1/alerts", False),
    ("oshmon-board", "osh/kop-1/alarms/z1/gd-1/co/stel", False),
    ("oshmon-board", "osh/kop-1/z1/gd-1/data", False),
    ("officer-duty", "osh/kop-2/ack", True),
    ("officer-duty", "osh/kop-2/alerts", False),
    ("officer-duty", "osh/kop-2/z1/gd-1/status", False),
    ("oshmon-monitor", "osh/kop-1/z1/gd-1/data", False),
    ("oshmon-monitor", "osh/kop-1/ack", False),
    ("oshmon-gateway", "osh/kop-1/alerts", True),
    ("oshmon-gateway", "osh/kop-1/alarms/z1/gd-1/co/stel", True),
    ("oshmon-gateway", "osh/deadletter", True),
    ("oshmon-gateway", "osh/kop-1/z1/gd-1/data", False),  # the gateway never fakes readings
    ("oshmon-gateway", "osh/gateway/audit/oshmon-gw-a", True),  # anchored audit head (retained)
    ("logger-kop-1", "osh/gateway/audit/oshmon-gw-a", False),  # nobody else moves the anchor
    ("oshmon-board", "osh/gateway/audit/oshmon-gw-a", False),
]


def test_every_account_in_the_acl_is_documented() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    for user in acl_users():
        name = user if not user.startswith(("logger-", "officer-")) else user.split("-")[0] + "-"
        assert name in doc, f"docs/operations.md does not explain the {user} account"


def test_acl_lets_each_account_do_its_job_only() -> None:
    with acl_broker() as port:
        monitor = Client(port, "oshmon-monitor", ["osh/#"])
        clients = {user: Client(port, user) for user in {c[0] for c in CASES}}
        try:
            sent = []
            for i, (user, topic, allowed) in enumerate(CASES):
                payload = f"probe-{i}-{user}".encode()
                clients[user].send(topic, payload, retain="/alarms/" in topic or "/audit/" in topic)
                sent.append((payload, user, topic, allowed))
            marker = b"marker-last"
            clients["logger-kop-1"].send("osh/kop-1/z1/gd-1/data", marker)
            end = time.time() + 10
            while not monitor.seen(marker) and time.time() < end:
                time.sleep(0.05)
            assert monitor.seen(marker)
            wrong = [(u, t, a) for p, u, t, a in sent if monitor.seen(p) != a]
            assert not wrong, f"ACL mismatch (account, topic, should be allowed): {wrong}"
        finally:
            for c in [monitor, *clients.values()]:
                c.close()


def test_a_logger_account_cannot_read_other_traffic() -> None:
    with acl_broker() as port:
        spy = Client(port, "logger-kop-2", ["osh/#"])
        gw = Client(port, "oshmon-gateway")
        try:
            gw.send("osh/kop-1/alerts", b"secret-alert")
            monitor = Client(port, "oshmon-monitor", ["osh/#"])
            gw.send("osh/kop-1/alerts", b"second-alert")
            end = time.time() + 5
            while not monitor.seen(b"second-alert") and time.time() < end:
                time.sleep(0.05)
            assert monitor.seen(b"second-alert")
            assert not spy.seen(b"secret-alert") and not spy.seen(b"second-alert")
            monitor.close()
        finally:
            spy.close()
            gw.close()


def test_gateway_works_under_the_acl(tmp_path: Path) -> None:
    """The gateway account has every right the gateway needs: it reads a logger's reading and
    answers a malformed one with a dead letter that the monitor sees."""
    with acl_broker() as port:
        monitor = Client(port, "oshmon-monitor", ["osh/#"])
        env = {
            "OSH_MQTT_URL": f"mqtt://oshmon-gateway:{PASSWORD}@127.0.0.1:{port}",
            "OSH_MQTT_CLIENT_ID": "acl-gw",
            "OSH_STORE": "sqlite",
            "OSH_SQLITE_PATH": str(tmp_path / "acl.sqlite"),
        }
        logger = Client(port, "logger-kop-1")
        gw = GatewayProcess(env, tmp_path / "gw.log")
        gw._log_file = gw.log.open("ab")
        gw.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"], cwd=ROOT, env=gw.env,
            stdout=gw._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            end = time.time() + 60
            while time.time() < end and not any(t == "osh/deadletter" for t, _p, _r in monitor.messages):
                assert gw.proc.poll() is None, gw.tail()
                logger.send("osh/kop-1/z1/gd-1/data", b"{not json")
                time.sleep(0.5)
        finally:
            gw.stop()
        dead = [p for t, p, _r in monitor.messages if t == "osh/deadletter"]
        logger.close()
        monitor.close()
        assert dead, "the gateway account could not read data or write dead letters under the ACL"
        assert PASSWORD.encode() not in b"".join(dead)
