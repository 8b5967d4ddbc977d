"""Commands for operators and safety officers: run, demo, simulate, ack, status."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import typer

from gateway.cli_opts import ConfigOpt
from gateway.config import Settings, load_settings, parse_mqtt_url
from gateway.mqtt import MqttEdge
from gateway.observability import HealthProbe, bind_http, build_app, serve_http
from gateway.runtime import Runtime, open_configured_store
from gateway.service import Counters

log = logging.getLogger("oshmon")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook/InfluxDB request otherwise


def subscriptions(settings: Settings) -> list[str]:
    p = settings.topic_prefix
    sites = settings.serve_sites or ["+"]
    topics: list[str] = []
    for site in sites:
        topics += [f"{p}/{site}/+/+/data", f"{p}/{site}/+/+/status", f"{p}/{site}/ack"]
        topics += [f"{p}/{site}/alarms/#", f"{p}/{site}/alerts"]  # its own outputs (gateway/watch.py)
    return topics


def run(config: ConfigOpt = None) -> None:
    """The gateway service; stops cleanly on SIGTERM/SIGINT (exit 0)."""
    settings = load_settings(config)
    _logging(settings.log_level)
    asyncio.run(serve(settings))


async def serve(
    settings: Settings,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    *,
    counters: Counters | None = None,
) -> Counters:
    """Run the gateway until SIGTERM/SIGINT (or `stop` is set); returns what it counted (into
    `counters` when given, so a caller such as the demo can watch them while it runs)."""
    from gateway.service import GatewayService

    http_sock = bind_http(settings.http_listen) if settings.http_listen else None
    rt = await asyncio.to_thread(Runtime.build, settings)
    target = parse_mqtt_url(settings.mqtt_url)
    try:
        async with MqttEdge(target, settings.mqtt_client_id, subscriptions=subscriptions(settings)) as edge:
            svc = GatewayService(edge, rt)
            if counters is not None:
                svc.counters = counters
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, svc.stop)
            log.info(
                "gateway %s serving %s on %s:%d",
                settings.mqtt_client_id,
                ", ".join(settings.serve_sites) or "every site",
                target.host,
                target.port,
            )
            if ready is not None:
                ready.set()
            http_stop = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                if stop is not None:
                    tg.create_task(_stop_when(stop, svc.stop), name="external-stop")
                if http_sock is not None:
                    app = build_app(svc.metrics, health_probe(edge, rt), svc.refresh_metrics)
                    tg.create_task(serve_http(app, http_sock, http_stop), name="http")
                await svc.run()
                http_stop.set()
                if stop is not None:
                    stop.set()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            return svc.counters
    except ConnectionError:  # the broker is unreachable: one line and exit 1 (gateway/cli.py)
        rt.close()
        raise
    finally:
        if http_sock is not None:
            http_sock.close()


def health_probe(edge: MqttEdge, rt: Runtime) -> HealthProbe:
    """Healthy: MQTT up, and the store accepts writes (or the spool does while it is down)."""
    return HealthProbe(lambda: edge.connected, rt.store, getattr(rt.store, "accepting", None))


async def _stop_when(event: asyncio.Event, action: Callable[[], None]) -> None:
    await event.wait()
    action()


def status(config: ConfigOpt = None) -> None:
    """Store, spool depth and open alerts, as the store's alert log has them."""
    from gateway.runtime import describe_status

    settings = load_settings(config)
    typer.echo(describe_status(settings))
    open_configured_store(settings, read_only=True).close()  # missing or unreachable: one line, exit 1
