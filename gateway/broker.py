"""An embedded MQTT 3.1.1 broker (amqtt 0.12) for `oshmon demo`: nothing to install or configure.

Anonymous, loopback-only by default, no persistence: for the zero-setup demo, not for
production (use mosquitto there; see docs/simulators.md and the amqtt notes in the tech notes).

    async with EmbeddedBroker() as broker:      # port 0: a free port is picked
        run_gateway(broker.url)                  # mqtt://127.0.0.1:PORT

amqtt's `Broker` config (amqtt/contexts.py `BrokerConfig`, 0.12.1): giving `plugins` replaces
the defaults, which include a per-packet logger and the `$SYS` plugin (which warns that psutil
will become optional); only the anonymous-auth plugin is kept.
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.errors import AMQTTError, BrokerError

from rules.errors import ConfigError

log = logging.getLogger(__name__)

_ANONYMOUS = "amqtt.plugins.authentication.AnonymousAuthPlugin"
_LISTENER = "default"  # amqtt requires a listener named "default"
_HANDLER_LOGGER = "amqtt.mqtt.protocol.handler"


class _LatePubackFilter(logging.Filter):
    """Drop amqtt's "Received PUBACK for unknown pending message" / "PUBACK waiter ... already
    done" warnings.

    amqtt 0.12.1 logs them when a QoS 1 subscriber disconnects right after acknowledging a message
    (seen in about a third of the runs of tests/test_broker.py, never when the client waits 0.2 s):
    connection teardown races with the PUBACK handling, which runs as its own task; the broker
    also registers its ack waiter only after the PUBLISH is written. The message was delivered
    and acknowledged either way (cf. Yakifo/amqtt#100). A PUBACK that never comes still shows
    as amqtt's "Timeout waiting for PUBACK" warning, which is not filtered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        late = text.startswith("Received PUBACK for unknown pending message")
        return not (late or (text.startswith("PUBACK waiter with Id") and text.endswith("already done")))


_late_puback_filter = _LatePubackFilter()
_running = 0  # brokers in this process; the filter stays while any of them runs


class EmbeddedBroker:
    """amqtt broker on `host:port` (port 0: any free port) as an async context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_connections: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"embedded broker port must be 0..65535, got {port}")
        self.host = host
        self._requested_port = port
        self._max_connections = max_connections
        self._broker: Broker | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded broker is not running")
        return self._port

    @property
    def url(self) -> str:
        """`mqtt://HOST:PORT`, the form `OSH_MQTT_URL` takes."""
        return f"mqtt://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "listeners": {
                _LISTENER: {
                    "type": "tcp",
                    "bind": f"{self.host}:{self._requested_port}",
                    "max_connections": self._max_connections,
                }
            },
            "plugins": {_ANONYMOUS: {"allow_anonymous": True}},
            "timeout_disconnect_delay": 0,
        }

    async def start(self) -> None:
        """Start listening; `port` is known afterwards. ConfigError if it cannot bind."""
        if self._broker is not None:
            raise RuntimeError("the embedded broker is already running")
        where = f"{self.host}:{self._requested_port}"
        _check_free(self.host, self._requested_port, where)
        broker = Broker(self.config())  # must be built inside the running loop
        try:
            await broker.start()
        except (BrokerError, AMQTTError, OSError) as exc:
            raise ConfigError(f"cannot start the embedded MQTT broker on {where}: {exc.__cause__ or exc}") from None
        self._broker = broker
        self._port = _bound_port(broker)
        _filter_late_pubacks(+1)
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        """Disconnect every client, close the listener, stop amqtt's tasks. Idempotent."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
            _filter_late_pubacks(-1)
            log.info("embedded MQTT broker on port %s stopped", self._port)
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _filter_late_pubacks(delta: int) -> None:
    global _running
    _running += delta
    handler_log = logging.getLogger(_HANDLER_LOGGER)
    if _running > 0:
        handler_log.addFilter(_late_puback_filter)  # no-op when already there
    else:
        handler_log.removeFilter(_late_puback_filter)


def _check_free(host: str, port: int, where: str) -> None:
    """Fail with a one-line reason before amqtt would log a traceback for a taken port."""
    if port == 0:
        return
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio.start_server does
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot start the embedded MQTT broker on {where}: {exc.strerror or exc}") from None


def _bound_port(broker: Broker) -> int:
    """The port the OS gave the listener (amqtt keeps its asyncio.Server per listener name)."""
    server = broker._servers[_LISTENER].instance  # amqtt 0.12 has no public accessor for this
    return int(server.sockets[0].getsockname()[1])


async def serve_until_terminated(host: str, port: int) -> None:
    """Run an embedded broker until SIGTERM/SIGINT (`python -m gateway.broker PORT`)."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedBroker(host, port):
        await stop.wait()


if __name__ == "__main__":  # the demo runs the embedded broker in its own process (gateway/demo_broker.py)
    import asyncio
    import sys

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_until_terminated("127.0.0.1", int(sys.argv[1])))
    except ConfigError as exc:
        print(f"oshmon broker: {exc}", file=sys.stderr)
        sys.exit(2)
