"""Untrusted text made safe to show: control characters escaped, oversized strings shortened.

Device ids, topics, ack names and notes, and error messages quoting them come from the network.
Written raw to a terminal or a log, an ESC/OSC sequence can recolour, retitle or hide text, a
newline can forge a whole log line, and a 60 KB topic floods every line that names it. Every
layer that shows such text (logs, terminal tables, dead letters) passes it through here; it is
pure stdlib, so every package may import it.
"""

from __future__ import annotations

import logging
import re

#: C0 controls (NUL, ESC, newline, ...), DEL, C1 controls (CSI/OSC as single code points), and the
#: bidirectional overrides/isolates that reorder how a line reads (CVE-2021-42574, "Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Longest topic or id a log line or dead letter repeats (SPEC §2: levels are at most 64 chars).
MAX_SHOWN_CHARS = 256


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: str) -> str:
    """`text` with every control and bidi-override character written as a visible escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """At most `limit` characters; a cut says how long the original was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text)} chars]"


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Shortened, then escaped: what a log line or a terminal cell may carry of untrusted text."""
    return printable(shorten(text, limit))


class SafeLogRecord(logging.LogRecord):
    """A log record whose message has its control characters escaped: a newline in an ack note
    cannot start a forged log line, an ESC sequence cannot reach the terminal. Tracebacks, which a
    formatter adds after the message, keep their lines."""

    def getMessage(self) -> str:
        return printable(super().getMessage())


def escape_log_messages() -> None:
    """Every record of every logger and handler (also Python's last-resort stderr handler) from now on."""
    logging.setLogRecordFactory(SafeLogRecord)
