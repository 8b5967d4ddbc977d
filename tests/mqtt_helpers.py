"""Test-side MQTT peers (paho) and a gateway subprocess, for integration tests on real brokers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent


def sqlite_gateway_env(broker_url: str, tmp: Path, profile: str = "eu", client: str = "gw") -> dict[str, str]:
    """The OSH_* variables of a gateway on `broker_url` with its own SQLite store under `tmp`."""
    return {
        "OSH_MQTT_URL": broker_url,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(tmp / "osh.sqlite"),
        "OSH_STATE_DIR": str(tmp / "state"),
        "OSH_PROFILE": profile,
        "OSH_MQTT_CLIENT_ID": f"{client}-{time.time_ns()}",
    }


class Collector:
    """Subscribes and keeps every message: (arrival time, topic, payload, retained)."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[float, str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-col-{time.time_ns()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(t, 1) for t in topics])
        self.client.loop_start()
        self._subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((time.time(), m.topic, bytes(m.payload), bool(m.retain)))

    def json_on(self, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for _, t, p, _r in self.messages if t.endswith(suffix) and p]

    def wait(self, pred: Callable[[Collector], bool], timeout: float = 30.0) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if pred(self):
                return True
            time.sleep(0.05)
        return pred(self)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-pub-{time.time_ns()}")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: object, qos: int = 1, retain: bool = False, wait: bool = True) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, raw, qos=qos, retain=retain)
        if wait:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class GatewayProcess:
    """`python -m gateway run` as a subprocess configured by OSH_* variables."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        # /metrics + /healthz only where a test asks for them (several gateways run at once)
        self.env = {**os.environ, "OSH_HTTP_LISTEN": "", **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self, port: int, prefix: str = "osh") -> GatewayProcess:
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        col = Collector(port, [f"{prefix}/deadletter"])
        pub = Publisher(port)
        try:
            end = time.time() + 60
            while time.time() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.tail()}")
                pub.send(f"{prefix}/probe/z/probe-dev/data", b"{not json")
                if col.wait(lambda c: bool(c.json_on("/deadletter")), 2.0):
                    return self
            raise TimeoutError(f"gateway never became ready: {self.tail()}")
        finally:
            col.close()
            pub.close()

    def tail(self, n: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-n:]
        return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        try:
            return self._stop(sig, timeout)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def _stop(self, sig: int, timeout: float) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                return None
        return self.proc.returncode


@contextlib.contextmanager
def gateway(env: dict[str, str], port: int, log: Path, prefix: str = "osh") -> Iterator[GatewayProcess]:
    gw = GatewayProcess(env, log).start(port, prefix)
    try:
        yield gw
    finally:
        gw.stop()
