"""Dead letters (SPEC §2): what could not be accepted, why, and the first KiB of it.

Every dead letter is published on `P/deadletter`. The log is for people: identical dead letters
from one topic (same reason, numbers aside — a sensor with a wrong clock sends "3601 s in the
future", "3602 s in the future", ...) are logged once per minute with a count (`DeadLetterLog`).
Topics and reasons are shortened and control characters escaped before they reach either.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass

import orjson

from alerts.types import rfc3339
from rules.text import shorten, shown

DEADLETTER_PAYLOAD_BYTES = 1024  # SPEC §2: the first 1 KiB of the rejected payload
MAX_ERROR_CHARS = 1024  # a reason quotes the payload at most briefly; longer is cut
LOG_WINDOW_S = 60.0  # identical dead letters of one topic are logged once per window, with a count
MAX_LOG_KEYS = 1000  # topics x reasons tracked (and logged) per minute at most; beyond it they are counted together
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    error: str
    payload: bytes
    received_s: float
    payload_bytes: int = 0  # the full size when `payload` holds only the head of an oversized one

    def to_wire(self) -> bytes:
        head = self.payload[:DEADLETTER_PAYLOAD_BYTES]
        try:
            text: str = head.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text = base64.b64encode(head).decode("ascii")
            encoding = "base64"
        return orjson.dumps(
            {
                "topic": shorten(self.topic),
                "error": shorten(self.error, MAX_ERROR_CHARS),
                "payload": text,
                "payload_encoding": encoding,
                "payload_bytes": self.payload_bytes or len(self.payload),
                "received_at": rfc3339(self.received_s),
            }
        )


@dataclass(slots=True)
class _Seen:
    since_s: float
    topic: str
    error: str
    more: int = 0


class DeadLetterLog:
    """Logs each (topic, reason) at most once per `window_s`, then how many more came meanwhile."""

    def __init__(self, logger: logging.Logger, window_s: float = LOG_WINDOW_S, max_keys: int = MAX_LOG_KEYS) -> None:
        self.log = logger
        self.window_s = window_s
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._overflow = 0  # dead letters not logged because too many distinct keys were tracked

    def record(self, d: DeadLetter, now_s: float) -> None:
        topic = shorten(d.topic)
        key = (topic, _NUMBER.sub("#", d.error))
        seen = self._seen.get(key)
        if seen is not None and now_s - seen.since_s < self.window_s:
            seen.more += 1
            return
        if seen is not None:
            self._summarise(seen)
        elif len(self._seen) >= self.max_keys:
            self._overflow += 1
            return
        self._seen[key] = _Seen(now_s, topic, d.error)
        self.log.warning("dead letter from %s: %s", shown(topic), shown(d.error, MAX_ERROR_CHARS))

    def flush(self, now_s: float) -> None:
        """Close the windows that have ended (call about once a second)."""
        for key, seen in list(self._seen.items()):
            if now_s - seen.since_s >= self.window_s:
                self._summarise(seen)
                del self._seen[key]
        if self._overflow:
            self.log.warning(
                "%d more dead letters from over %d distinct topics and reasons were not logged one by one "
                "(all are on the deadletter topic)",
                self._overflow,
                self.max_keys,
            )
            self._overflow = 0

    def _summarise(self, seen: _Seen) -> None:
        if seen.more:
            self.log.warning(
                "dead letter from %s repeated %d more times in %.0f s: %s",
                shown(seen.topic),
                seen.more,
                self.window_s,
                shown(seen.error, MAX_ERROR_CHARS),
            )
