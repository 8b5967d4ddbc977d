"""`GET /metrics` (Prometheus) and `GET /healthz` for `oshmon run` (SPEC §5, docs/operations.md).

The metrics live in a registry of their own (not prometheus-client's global one), so several
gateways in one test process never share counters. The HTTP side is Starlette served by uvicorn
inside the gateway's event loop; the health probe itself (a store ping) runs in a thread and is
cached for `HEALTH_CACHE_S`, so a scraper hammering `/healthz` never loads the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rules.errors import ConfigError

log = logging.getLogger(__name__)

HEALTH_CACHE_S = 1.0  # /healthz answers from a probe at most this old
PING_TIMEOUT_S = 2.0  # a store that does not answer a ping within this is unreachable
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    """Every metric the gateway exports; names and meanings in docs/operations.md."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter("oshmon_messages", "MQTT messages taken in (readings, status, acks)", registry=r)
        self.readings_stored = Counter("oshmon_readings_stored", "Readings stored durably (store or spool)", registry=r)
        self.dead_letters = Counter(
            "oshmon_dead_letters", "Messages or records rejected, by reason", ["reason"], registry=r
        )
        self.alert_events = Counter(
            "oshmon_alert_events", "Alert lifecycle events published", ["severity", "event"], registry=r
        )
        self.open_alerts = Gauge("oshmon_open_alerts", "Alerts open now", ["severity"], registry=r)
        self.batch_seconds = Histogram(
            "oshmon_batch_seconds", "Time to process one intake batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.store_write_seconds = Histogram(
            "oshmon_store_write_seconds", "Time to write one batch of readings", buckets=BATCH_BUCKETS, registry=r
        )
        self.spool_bytes = Gauge("oshmon_spool_bytes", "Bytes waiting in the on-disk spool for the store", registry=r)
        self.intake_queue_depth = Gauge(
            "oshmon_intake_queue_depth", "Messages received but not yet processed", registry=r
        )
        self.channels = Gauge("oshmon_channels", "Channels (site/zone/device/hazard/worker) known", registry=r)
        self.sink_failures = Counter(
            "oshmon_sink_failures", "Alert deliveries a sink failed (each retry counts)", ["sink"], registry=r
        )
        self.mqtt_connected = Gauge("oshmon_mqtt_connected", "1 while the MQTT session is up", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def dead_letter_reason(topic: str, error: str, store_topic: str) -> str:
    """A small, fixed set of label values for `oshmon_dead_letters_total{reason}` (bounded
    cardinality: the full reason is in the dead letter itself)."""
    text = error.lower()
    if topic == store_topic:
        return "store_refused"
    if topic.endswith("/ack"):
        return "ack"
    if topic.endswith("/status"):
        return "status"
    for reason, words in _REASON_WORDS:
        if any(w in text for w in words):
            return reason
    return "invalid_payload"


_REASON_WORDS = (
    ("bad_topic", ("topic",)),
    ("malformed_json", ("json", "utf-8", "duplicate key")),
    ("too_large", ("too large", "bytes, more than", "kib")),
    ("time_window", ("future", "older than", "too old")),
    ("unit", ("unit",)),
    ("hazard", ("hazard",)),
    ("capacity", ("channels", "inventory")),
)


class Pingable(Protocol):
    def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: dict[str, Any]


class HealthProbe:
    """Healthy = the MQTT session is up and the store (or, while it is down, the spool) accepts
    writes. `mqtt_up` and `spool_ok` are callables so the probe never owns the resources."""

    def __init__(
        self,
        mqtt_up: Callable[[], bool],
        store: object,
        spool_ok: Callable[[], tuple[bool, str | None]] | None,
    ) -> None:
        self._mqtt_up = mqtt_up
        self._store = store
        self._spool_ok = spool_ok
        self._cached: tuple[float, Health] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> Health:
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > HEALTH_CACHE_S:
                self._cached = (now, await asyncio.to_thread(self._probe))
            return self._cached[1]

    def _probe(self) -> Health:
        detail: dict[str, Any] = {"mqtt": "connected" if self._mqtt_up() else "disconnected"}
        store_error = _ping(self._store)
        detail["store"] = "ok" if store_error is None else f"unreachable: {store_error}"
        writable = store_error is None
        if store_error is not None and self._spool_ok is not None:
            spool_ok, why = self._spool_ok()
            detail["spool"] = "accepting writes" if spool_ok else f"not accepting writes: {why}"
            writable = spool_ok
        elif store_error is not None:
            detail["spool"] = "disabled (OSH_SPOOL=false)"
        ok = detail["mqtt"] == "connected" and writable
        if not ok:
            reasons = [f"MQTT {detail['mqtt']}"] if detail["mqtt"] != "connected" else []
            if not writable:
                reasons.append(f"store {detail['store']}; spool {detail.get('spool', '-')}")
            detail["reason"] = "; ".join(reasons)
        return Health(ok, detail)


def _ping(store: object) -> str | None:
    ping = getattr(store, "ping", None)
    if ping is None:
        return None
    try:
        ping()
    except Exception as exc:  # any failure means "cannot write now"; the reason goes into the answer
        return str(exc) or type(exc).__name__
    return None


def build_app(metrics: GatewayMetrics, probe: HealthProbe, refresh: Callable[[], None]) -> Starlette:
    """`refresh` updates the gauges that are read off the gateway rather than counted."""

    async def metrics_endpoint(_request: Request) -> Response:
        refresh()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_request: Request) -> Response:
        health = await probe.check()
        return JSONResponse({"status": "ok" if health.ok else "unhealthy", **health.detail},
                            status_code=200 if health.ok else 503)  # fmt: skip

    return Starlette(routes=[Route("/metrics", metrics_endpoint), Route("/healthz", healthz)])


def parse_listen(listen: str, setting: str = "OSH_HTTP_LISTEN") -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:9108`) from OSH_HTTP_LISTEN or OSH_BOARD_LISTEN."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ConfigError(f"{setting}={listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9108")
    return host.strip("[]") or "127.0.0.1", int(port)


class _GatewayOwnsSignals(uvicorn.Server):
    """uvicorn replaces SIGTERM/SIGINT handlers while it serves; the gateway's own handlers
    (drain, then exit 0) must stay in charge."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_http(listen: str, setting: str = "OSH_HTTP_LISTEN") -> socket.socket:
    """The listening socket for OSH_HTTP_LISTEN, bound before start-up goes on, so a port in use
    stops the gateway at once with the setting named (uvicorn would sys.exit() inside our loop)."""
    host, port = parse_listen(listen, setting)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{setting}={listen}: cannot listen there ({exc.strerror})") from None
    return sock


async def serve_http(
    app: Starlette, sock: socket.socket, stop: asyncio.Event, tls: tuple[Path, Path] | None = None
) -> None:
    """Serve `app` on the bound `sock` until `stop` is set (`tls`: certificate and key files)."""
    cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            ssl_certfile=cert, ssl_keyfile=key)  # fmt: skip
    server = _GatewayOwnsSignals(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="http-serve")
    host, port = sock.getsockname()[:2]
    log.info("serving on %s://%s:%d", "https" if tls else "http", host, port)
    await stop.wait()
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sock.close()
