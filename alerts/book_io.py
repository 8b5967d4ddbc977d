"""JSON forms of the alert book's small side tables (for `AlertBook.snapshot`/`restore`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from alerts.state import AlertSubject


def faults_to_json(faults: dict[AlertSubject, list[tuple[float, float]]]) -> list[dict[str, Any]]:
    """Cleared malfunction spans per subject, as `[{"subject": {...}, "spans": [[a, b], ...]}]`."""
    return [{"subject": asdict(s), "spans": [list(sp) for sp in spans]} for s, spans in faults.items()]


def faults_from_json(rows: list[dict[str, Any]]) -> dict[AlertSubject, list[tuple[float, float]]]:
    return {AlertSubject(**row["subject"]): [(float(a), float(b)) for a, b in row["spans"]] for row in rows}
