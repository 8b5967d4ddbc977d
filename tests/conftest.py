"""Session-wide real services (see tests/services.py) and shared fixtures."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import (
    IN_CI,
    Influxd,
    Mosquitto,
    VictoriaMetrics,
    run_influxd,
    run_mosquitto,
    run_victoria_metrics,
)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """A real mosquitto broker for the whole session (restartable via `.restart()`)."""
    with run_mosquitto() as broker:
        yield broker


@pytest.fixture(scope="session")
def influxd() -> Iterator[Influxd]:
    """A real influxd (1.x) for the whole session."""
    with run_influxd() as server:
        yield server


@pytest.fixture(scope="session")
def victoria_metrics() -> Iterator[VictoriaMetrics]:
    """A real victoria-metrics (accepts InfluxDB's v2 write API) for the whole session."""
    with run_victoria_metrics() as server:
        yield server


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(key, certificate): self-signed for 127.0.0.1, made with the openssl command line."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("openssl is needed for the STARTTLS tests")
        pytest.skip("openssl not installed: the STARTTLS tests need a self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, crt
