"""`oshmon history` output: store rows as a table (rich), CSV or JSON, streamed.

Rows are written as they arrive, so a long history never sits in memory: CSV row by row, JSON
as one array written element by element, the table in blocks of `TABLE_BLOCK` rows.
CSV and JSON carry every column of `storage.base.COLUMNS[kind]`; the table a readable subset.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, Literal, TextIO

import orjson
from rich.console import Console
from rich.table import Table

from storage.base import COLUMNS, RecordKind

Format = Literal["table", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "csv", "json")
#: Rows per rendered table block.
TABLE_BLOCK = 500
#: Console width when writing to a file or pipe (a terminal reports its own).
PIPE_WIDTH = 220
#: Columns shown in the table view (CSV and JSON have all of them).
TABLE_COLUMNS: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.READINGS: COLUMNS[RecordKind.READINGS],
    RecordKind.EXPOSURES: ("t", "site", "zone", "device", "hazard", "worker", "shift", "twa8", "stel15_max",
                           "peak", "lex8h", "dose_pct", "coverage", "final", "sensor_faulty"),
    RecordKind.ALERTS: ("t", "event", "severity", "rule", "site", "zone", "device", "hazard", "worker",
                        "value", "threshold", "unit", "by", "note", "alert_id"),
}  # fmt: skip
_NUMERIC = frozenset({"value", "twa8", "stel15_max", "peak", "coverage", "max_gap_s", "lex8h", "dose_pct", "threshold"})


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return v


def _table_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


def _write_csv(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...], out: TextIO) -> int:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    n = 0
    for row in rows:
        w.writerow([_csv_cell(row.get(c)) for c in columns])
        n += 1
    return n


def _json_default(obj: Any) -> Any:
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _write_json(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...], out: TextIO) -> int:
    """A JSON array of row objects (keys in column order), one element per line."""
    out.write("[")
    n = 0
    for row in rows:
        obj = {c: row.get(c) for c in columns}
        out.write(("\n" if n == 0 else ",\n") + orjson.dumps(obj, default=_json_default).decode())
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _blocks(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    it = iter(rows)
    while block := list(islice(it, TABLE_BLOCK)):
        yield block


def _write_table(rows: Iterable[Mapping[str, Any]], kind: RecordKind, out: TextIO) -> int:
    columns = TABLE_COLUMNS[kind]
    console = Console(file=out, highlight=False, width=None if out.isatty() else PIPE_WIDTH)
    n = 0
    for block in _blocks(rows):
        table = Table(show_header=n == 0, box=None, pad_edge=False, header_style="bold")
        for c in columns:
            table.add_column(c, justify="right" if c in _NUMERIC else "left", no_wrap=c == "t")
        for row in block:
            table.add_row(*(_table_cell(row.get(c)) for c in columns))
        console.print(table)
        n += len(block)
    if n == 0:
        console.print(f"no {kind} match")
    return n


def render(rows: Iterable[Mapping[str, Any]], kind: RecordKind, fmt: Format, out: TextIO) -> int:
    """Write `rows` (store query rows of `kind`) to `out` as `fmt`; returns the number of rows."""
    if fmt == "csv":
        return _write_csv(rows, COLUMNS[kind], out)
    if fmt == "json":
        return _write_json(rows, COLUMNS[kind], out)
    if fmt == "table":
        return _write_table(rows, kind, out)
    raise ValueError(f"unknown history format {fmt!r}; choose one of {', '.join(FORMATS)}")
