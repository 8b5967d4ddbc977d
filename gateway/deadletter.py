"""Dead letters (SPEC §2): what could not be accepted, why, and the first KiB of it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from alerts.types import rfc3339

DEADLETTER_PAYLOAD_BYTES = 1024  # SPEC §2: the first 1 KiB of the rejected payload


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    error: str
    payload: bytes
    received_s: float

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
                "topic": self.topic,
                "error": self.error,
                "payload": text,
                "payload_encoding": encoding,
                "payload_bytes": len(self.payload),
                "received_at": rfc3339(self.received_s),
            }
        )
