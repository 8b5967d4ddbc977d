"""MQTT sink: `P/{site}/alerts` (QoS 1) and the retained `P/{site}/alarms/...` topic.

The MQTT client lives in gateway/mqtt.py; this sink only gets an async publish callable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from alerts.sinks.base import Delivery
from rules.errors import SinkError

#: `await publish(topic, payload, qos, retain)`; raises on failure (any exception is retried).
Publish = Callable[[str, bytes, int, bool], Awaitable[None]]

ALERT_QOS = 1


class MqttSink:
    """Publishes each event, then the alert's retained state (b"" clears the retained message)."""

    def __init__(self, publish: Publish, prefix: str = "osh", name: str = "mqtt") -> None:
        self.name = name
        self._publish = publish
        self._prefix = prefix

    def alerts_topic(self, site: str) -> str:
        return f"{self._prefix}/{site}/alerts"

    async def send(self, delivery: Delivery) -> None:
        ev = delivery.event
        try:
            await self._publish(self.alerts_topic(ev.site), orjson.dumps(ev.to_wire()), ALERT_QOS, False)
            if delivery.retained is not None:
                topic = f"{self._prefix}/{ev.site}/{ev.alarm_topic_suffix()}"
                await self._publish(topic, delivery.retained, ALERT_QOS, True)
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"{self.name}: publish failed ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        return None
