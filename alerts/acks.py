"""What an acknowledgement may say, checked in one place (issue 15): the names and notes the
alert book records, the MQTT payload check and `oshmon ack` all use these limits.

`by` and `note` reach logs, terminals, CSV files and the evidence bundle: control characters
(ESC sequences, CR/LF that would forge a log line, bidi overrides, NUL) are replaced by a space
and runs of white space collapsed, before the length is checked.
"""

from __future__ import annotations

import unicodedata

from alerts.errors import InvalidAckError

#: Longest `by` (a person's name and role, or a board account), in characters after cleaning.
ACK_BY_MAX = 120
#: Longest `note` (cause found / action taken), in characters after cleaning.
ACK_NOTE_MAX = 2000
#: How long an ack id is remembered: the same ack id again within it is a replay (no new event).
ACK_REPLAY_WINDOW_S = 24 * 3600.0
#: At most this many ack ids are remembered (oldest forgotten first).
ACK_IDS_MAX = 10_000


def clean_text(text: str) -> str:
    """`text` with every control or format character (Unicode Cc, Cf) as a space, white space
    collapsed and trimmed."""
    spaced = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    return " ".join(spaced.split())


def clean_ack(by: str | None, note: str | None) -> tuple[str, str | None]:
    """The recorded `(by, note)`; `InvalidAckError` without a name or when either is too long."""
    name = clean_text(by or "")
    text = clean_text(note or "") or None
    if not name:
        raise InvalidAckError('an acknowledgement needs the name of the person (--by / "by")')
    if len(name) > ACK_BY_MAX:
        raise InvalidAckError(f"acknowledgement name too long: {len(name)} characters, at most {ACK_BY_MAX}")
    if text is not None and len(text) > ACK_NOTE_MAX:
        raise InvalidAckError(f"acknowledgement note too long: {len(text)} characters, at most {ACK_NOTE_MAX}")
    return name, text
