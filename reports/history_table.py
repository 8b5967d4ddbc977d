"""The `oshmon history` table: the columns that fit the terminal, never a cut cell.

Each kind has its columns in display order, each with a priority: every priority-0 column is
always shown; the others are added, most important first, while the table still fits the width
(`--wide`: all of them). A cell is never shortened or wrapped — above all the `alert_id`, which
must stay copyable into `oshmon ack`. Units are in the headers where a column has one unit, and
in the cell (value and unit) where rows of several hazards share a column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from rules.text import printable as _printable
from storage.base import RecordKind
from storage.records import unit_of

Row = Mapping[str, Any]
#: Spaces between two columns.
GAP = 2


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    cell: Callable[[Row], str]
    priority: int = 0  # 0: always shown; higher numbers are dropped first on a narrow terminal
    numeric: bool = False
    optional: bool = False  # left out when no row of the first block has a value in it


def num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return format(v, f".{digits}g")
    return str(v)


def when(v: Any, *, fraction: bool = True) -> str:
    """RFC 3339 UTC → "2026-11-27 08:39:43.063" (the header says UTC)."""
    text = str(v or "").replace("T", " ").removesuffix("Z")
    return text if fraction else text.split(".")[0]


def printable(v: Any) -> str:
    """Text for a terminal cell: control characters (ESC, CR, newline ...) shown escaped, never sent."""
    return "" if v is None else _printable(str(v))


def _field(name: str) -> Callable[[Row], str]:
    return lambda r: printable(r.get(name))


def _with_unit(name: str) -> Callable[[Row], str]:
    def cell(r: Row) -> str:
        value = num(r.get(name))
        return f"{value} {r.get('unit') or ''}".rstrip() if value else ""

    return cell


#: Limit keys of a record in order of preference, with the figure each one compares: a shift-average
#: limit (30 CFR 70.100) compares the stored `shift_avg`, never the 8-h `twa8` (docs/reports.md).
_JUDGED = (("limit_shift_avg", "shift_avg"), ("limit_twa8", "twa8"), ("limit_lex8h", "twa8"))


def _judged(r: Row) -> tuple[str, float] | None:
    """(figure, limit) a record is judged on: ("shift_avg", 1.5), ("twa8", 20.0) … or None."""
    limits = r.get("limits") or {}
    return next(((figure, float(limits[key])) for key, figure in _JUDGED if key in limits), None)


def _limit_cell(r: Row) -> str:
    judged = _judged(r)
    if judged is None:
        return "none"
    return f"{num(judged[1])} shift avg" if judged[0] == "shift_avg" else num(judged[1])


def _of_limit(r: Row) -> str:
    judged = _judged(r)
    if judged is None:
        return ""
    value = r.get(judged[0])
    return "" if value is None or judged[1] == 0 else f"{100.0 * value / judged[1]:.0f}"


def _exposure_unit(r: Row) -> str:
    return unit_of(str(r.get("hazard") or ""))


COLUMNS: dict[RecordKind, tuple[Col, ...]] = {
    RecordKind.READINGS: (
        Col("time (UTC)", lambda r: when(r.get("t"))),
        Col("site", _field("site"), 2),
        Col("zone", _field("zone"), 3),
        Col("device", _field("device")),
        Col("hazard", _field("hazard")),
        Col("worker", _field("worker"), 4),
        Col("value", lambda r: num(r.get("value"), 6), numeric=True),
        Col("unit", _field("unit")),
    ),
    RecordKind.EXPOSURES: (
        Col("shift", _field("shift")),
        Col("site", _field("site"), 2),
        Col("zone", _field("zone"), 5),
        Col("device", _field("device")),
        Col("worker", _field("worker"), 4),
        Col("hazard", _field("hazard")),
        Col("8-h avg", lambda r: num(r.get("twa8")), numeric=True),
        Col("shift avg", lambda r: num(r.get("shift_avg")), 1, numeric=True, optional=True),
        Col("limit", _limit_cell, numeric=True),
        Col("unit", _exposure_unit),
        Col("% of limit", _of_limit, 1, numeric=True),
        Col("peak", lambda r: num(r.get("peak")), 3, numeric=True),
        Col("STEL15 max", lambda r: num(r.get("stel15_max")), 6, numeric=True),
        Col("dose %", lambda r: num(r.get("dose_pct"), 3), 6, numeric=True),
        Col("coverage %", lambda r: num(None if r.get("coverage") is None else 100 * r["coverage"], 3), 3, True),
        Col("final", lambda r: num(r.get("final")), 7),
        Col("sensor faulty", lambda r: num(r.get("sensor_faulty")), 7),
    ),
    RecordKind.ALERTS: (
        Col("time (UTC)", lambda r: when(r.get("t"), fraction=False)),
        Col("event", _field("event")),
        Col("severity", _field("severity"), 1),
        Col("rule", _field("rule"), 5),
        Col("site", _field("site"), 4),
        Col("zone", _field("zone"), 6),
        Col("device", _field("device"), 3),
        Col("hazard", _field("hazard"), 1),
        Col("worker", _field("worker"), 6),
        Col("value", _with_unit("value"), 2, numeric=True),
        Col("limit", _with_unit("threshold"), 5, numeric=True),
        Col("by", _field("by"), 7),
        Col("note", _field("note"), 8),
        Col("alert_id", _field("alert_id")),
    ),
}


def empty_optional(cols: Sequence[Col], cells: Sequence[Sequence[str]]) -> frozenset[int]:
    """Indexes of the optional columns with no value in any of `cells`' rows."""
    return frozenset(i for i, c in enumerate(cols) if c.optional and not any(row[i] for row in cells))


def fit(cols: Sequence[Col], widths: Sequence[int], width: int | None, skip: frozenset[int] = frozenset()) -> list[int]:
    """Indexes of the columns to show: every priority-0 column, then the others by priority
    (ties in display order) until the next one does not fit `width` (None: all of them);
    never those in `skip` (empty optional columns)."""
    if width is None:
        return [i for i in range(len(cols)) if i not in skip]
    chosen = {i for i, c in enumerate(cols) if c.priority == 0}
    used = sum(widths[i] for i in chosen) + GAP * (len(chosen) - 1)
    rest = (i for i in range(len(cols)) if i not in chosen and i not in skip)
    for i in sorted(rest, key=lambda i: (cols[i].priority, i)):
        if used + GAP + widths[i] > width:
            break  # no smaller, less important column in its place: the same view for every block
        chosen.add(i)
        used += GAP + widths[i]
    return sorted(chosen)


def table(
    cols: Sequence[Col], cells: list[list[str]], shown: Sequence[int], widths: Sequence[int], header: bool
) -> Table:
    """A rich table of pre-rendered cells: fixed widths, no wrapping, no markup interpretation."""
    t = Table(show_header=header, box=None, pad_edge=False, header_style="bold", padding=(0, GAP // 2))
    for i in shown:
        c = cols[i]
        t.add_column(c.header, justify="right" if c.numeric else "left", no_wrap=True, min_width=widths[i])
    for row in cells:
        t.add_row(*(Text(row[i]) for i in shown))
    return t
