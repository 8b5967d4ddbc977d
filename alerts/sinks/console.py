"""Console / log sink: one readable line per event, through `logging` or a text stream."""

from __future__ import annotations

import logging
from typing import TextIO

from alerts.sinks.base import Delivery
from alerts.types import AlertEvent, AlertEventKind, rfc3339
from rules.text import printable
from rules.types import Severity

_LEVEL = {
    Severity.WARNING: logging.WARNING,
    Severity.ALARM: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
    Severity.MALFUNCTION: logging.ERROR,
}


def format_line(event: AlertEvent) -> str:
    """`2026-11-22T09:41:07Z ALARM raised kop-1/north-adit/gd-17 co stel: <message> | do: <action> [id]`."""
    where = f"{event.site}/{event.zone}/{event.device}" + (f" ({event.worker})" if event.worker else "")
    head = f"{rfc3339(event.t_s)} {event.severity.upper()} {event.event} {where}"
    line = f"{head} {event.hazard} {event.rule}: {event.message}"
    if (event.event is AlertEventKind.RAISED or event.reason == "severity_rise") and event.action:
        line += f" | do: {event.action}"
    return printable(f"{line} [{event.alert_id}]")  # ids, ack names and notes come from the network


class ConsoleSink:
    """Writes `format_line(event)` to `stream` if given, else logs it (level by severity)."""

    def __init__(self, name: str = "console", stream: TextIO | None = None, logger: str = "oshmon.alerts") -> None:
        self.name = name
        self._stream = stream
        self._log = logging.getLogger(logger)

    async def send(self, delivery: Delivery) -> None:
        line = format_line(delivery.event)
        if self._stream is not None:
            self._stream.write(line + "\n")
            self._stream.flush()
        else:
            level = logging.INFO if delivery.event.event is AlertEventKind.CLEARED else _LEVEL[delivery.event.severity]
            self._log.log(level, "%s", line)

    async def aclose(self) -> None:
        return None
