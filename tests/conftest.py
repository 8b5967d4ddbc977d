"""Session-wide real services (see tests/services.py) and shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import (
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
