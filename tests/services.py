"""Real services for integration tests: Debian's mosquitto and influxd on free loopback ports.

Each runs in its own temporary directory and is stopped afterwards. With CI=true a missing
service is a failure; otherwise the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def require(binary: str, package: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if Path(p).exists()), None
    )
    if path is None:
        msg = f"{binary} not found: install Debian's `{package}` package (make test does this as root)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@dataclass
class Mosquitto:
    """A mosquitto broker in a temporary directory; restartable with the same port and state."""

    binary: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.dir / "mosquitto.conf"
        # max_queued_messages 0 = unlimited: the 1000-message default silently drops QoS 1
        # messages for an offline persistent session (tech-notes §2.3).
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.dir}/\n"
            "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n"
        )
        with (self.dir / "mosquitto.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def run_mosquitto() -> Iterator[Mosquitto]:
    binary = require("mosquitto", "mosquitto")
    state = Path(tempfile.mkdtemp(prefix="osh-mosq-"))
    # mosquitto started as root drops to the `mosquitto` user, which must be able to write its
    # persistence file here; otherwise it keeps sessions in memory only ("Permission denied")
    # and a broker restart loses every queued message.
    state.chmod(0o777)
    broker = Mosquitto(binary, free_port(), state)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)


@dataclass
class Influxd:
    """Debian's influxd (1.x API); both the HTTP and the backup RPC port are free ones."""

    binary: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    auth_enabled: bool = False  # [http] auth-enabled: create the first admin user over /query

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        conf = self.dir / "influxdb.conf"
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{self.dir}/meta"\n'
            f'[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            f"  auth-enabled = {'true' if self.auth_enabled else 'false'}\n"
        )
        with (self.dir / "influxd.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([self.binary, "-config", str(conf)], stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/ping", timeout=1).close()
                return
            time.sleep(0.2)
        raise TimeoutError(f"influxd did not start: {(self.dir / 'influxd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@contextlib.contextmanager
def run_influxd(*, auth_enabled: bool = False) -> Iterator[Influxd]:
    binary = require("influxd", "influxdb")
    server = Influxd(binary, free_port(), Path(tempfile.mkdtemp(prefix="osh-influx-")), auth_enabled=auth_enabled)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@dataclass
class VictoriaMetrics:
    """Debian's victoria-metrics: speaks InfluxDB's `/api/v2/write` (tech-notes §5)."""

    binary: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        args = [
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.dir}/data",
            "-retentionPeriod=100y", "-search.latencyOffset=0s",
        ]  # fmt: skip
        with (self.dir / "victoria-metrics.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/health", timeout=1).close()
                return
            time.sleep(0.2)
        log_text = (self.dir / "victoria-metrics.log").read_text()[-2000:]
        raise TimeoutError(f"victoria-metrics did not start: {log_text}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@contextlib.contextmanager
def run_victoria_metrics() -> Iterator[VictoriaMetrics]:
    binary = require("victoria-metrics", "victoria-metrics")
    server = VictoriaMetrics(binary, free_port(), Path(tempfile.mkdtemp(prefix="osh-vm-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
