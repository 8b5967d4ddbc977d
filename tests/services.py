"""Real services for integration tests: Debian's mosquitto, influxd and victoria-metrics.

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
from typing import TypeVar

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
class _Server:
    """A server process in its own temporary directory, on a free loopback port."""

    binary: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    name: str = "server"
    health_path: str = "/ping"  # HTTP servers: answered once they are ready

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, args: list[str]) -> None:
        with (self.dir / f"{self.name}.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)

    def _wait_http(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + self.health_path, timeout=1).close()
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not start: {(self.dir / f'{self.name}.log').read_text()[-2000:]}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def start(self) -> None:
        raise NotImplementedError


S = TypeVar("S", bound=_Server)


@contextlib.contextmanager
def _running(server: S) -> Iterator[S]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@dataclass
class Mosquitto(_Server):
    """A mosquitto broker; restartable with the same port and persistent state."""

    name: str = "mosquitto"
    extra_conf: str = ""  # more mosquitto.conf lines (e.g. from deploy/mosquitto.conf)

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
            "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n" + self.extra_conf
        )
        self._spawn([self.binary, "-c", str(conf)])
        wait_port(self.port)


def run_mosquitto(extra_conf: str = "") -> contextlib.AbstractContextManager[Mosquitto]:
    state = Path(tempfile.mkdtemp(prefix="osh-mosq-"))
    # mosquitto started as root drops to the `mosquitto` user, which must be able to write its
    # persistence file here; otherwise it keeps sessions in memory only ("Permission denied")
    # and a broker restart loses every queued message.
    state.chmod(0o777)
    return _running(Mosquitto(require("mosquitto", "mosquitto"), free_port(), state, extra_conf=extra_conf))


@dataclass
class Influxd(_Server):
    """Debian's influxd (1.x API); both the HTTP and the backup RPC port are free ones."""

    name: str = "influxd"
    auth_enabled: bool = False  # [http] auth-enabled: create the first admin user over /query

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
        self._spawn([self.binary, "-config", str(conf)])
        self._wait_http(timeout)


def run_influxd(*, auth_enabled: bool = False) -> contextlib.AbstractContextManager[Influxd]:
    state = Path(tempfile.mkdtemp(prefix="osh-influx-"))
    server = Influxd(require("influxd", "influxdb"), free_port(), state, auth_enabled=auth_enabled)
    return _running(server)


@dataclass
class VictoriaMetrics(_Server):
    """Debian's victoria-metrics: speaks InfluxDB's `/api/v2/write` (tech-notes §5)."""

    name: str = "victoria-metrics"
    health_path: str = "/health"

    def start(self, timeout: float = 60.0) -> None:
        self._spawn([
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.dir}/data",
            "-retentionPeriod=100y", "-search.latencyOffset=0s",
        ])  # fmt: skip
        self._wait_http(timeout)


def run_victoria_metrics() -> contextlib.AbstractContextManager[VictoriaMetrics]:
    state = Path(tempfile.mkdtemp(prefix="osh-vm-"))
    return _running(VictoriaMetrics(require("victoria-metrics", "victoria-metrics"), free_port(), state))
