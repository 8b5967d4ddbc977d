"""Time arguments of the command line: RFC 3339 time stamps or YYYY-MM-DD dates (UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rules.errors import ConfigError


def parse_cli_time(text: str, option: str) -> float:
    """`2026-11-22` (midnight UTC), `2026-11-22T09:41:07Z` or with an offset → epoch seconds."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not a date (YYYY-MM-DD) or an RFC 3339 time stamp (e.g. 2026-11-22T09:41:07Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_month(text: str) -> tuple[int, int]:
    """`YYYY-MM` → (year, month)."""
    try:
        dt = datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise ConfigError(f"--month {text!r} must look like YYYY-MM (e.g. 2026-11)") from None
    return dt.year, dt.month
