"""Alert ids: ULID-style, 26 Crockford base-32 characters, sortable by creation time.

48 bits of wall-clock milliseconds followed by 80 random bits (https://github.com/ulid/spec);
the clock only orders ids for people reading a log, uniqueness comes from the random part.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_ID_CHARS = 26  # 26 * 5 = 130 bits >= 48 + 80


def new_alert_id() -> str:
    """A fresh ULID string, e.g. `01JD3X6T0G8Q6Z2M4N5P7R9S1V`."""
    ms = time.time_ns() // 1_000_000
    n = (ms << _RANDOM_BITS) | int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
    return "".join(_CROCKFORD[(n >> shift) & 31] for shift in range(5 * (_ID_CHARS - 1), -1, -5))
