"""`oshmon history` output: store rows as a table (rich), CSV or JSON, streamed.

Rows are written as they arrive, so a long history never sits in memory: CSV row by row, JSON
as one array written element by element, the table in blocks of `TABLE_BLOCK` rows.
CSV and JSON carry every column of `storage.base.COLUMNS[kind]`; the table the columns that fit
the terminal (reports/history_table.py).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, Literal, TextIO

import orjson
from rich.console import Console

from reports import history_table as ht
from reports.files import csv_text
from storage.base import COLUMNS, RecordKind

Format = Literal["table", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "csv", "json")
#: Rows per rendered table block.
TABLE_BLOCK = 500
#: Table width when writing to a file or pipe with no COLUMNS set (a terminal reports its own).
PIPE_WIDTH = 220


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return csv_text(v)  # OWASP CSV injection: text starting with = + - @ tab CR (reports/files.py)


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


def _write_table(rows: Iterable[Mapping[str, Any]], kind: RecordKind, out: TextIO, width: int | None) -> int:
    """Blocks of `TABLE_BLOCK` rows; the columns that fit `width` are chosen on the first block."""
    cols = ht.COLUMNS[kind]
    console = Console(file=out, highlight=False, width=width or 100_000, soft_wrap=width is None)
    n, shown, widths, skip = 0, list[int](), [len(c.header) for c in cols], frozenset[int]()
    for block in _blocks(rows):
        cells = [[c.cell(row) for c in cols] for row in block]
        widths = [max(w, *(len(r[i]) for r in cells)) for i, w in enumerate(widths)]
        if n == 0:
            skip = ht.empty_optional(cols, cells)
            shown = ht.fit(cols, widths, width, skip)
        console.print(ht.table(cols, cells, shown, widths, header=n == 0))
        n += len(block)
    if n == 0:
        console.print(f"no {kind} match")
    elif width is not None and len(shown) + len(skip) < len(cols):
        hidden = [cols[i].header for i in range(len(cols)) if i not in shown and i not in skip]
        console.print(f"({len(hidden)} more columns with --wide: {', '.join(hidden)})", style="dim")
    return n


def render(
    rows: Iterable[Mapping[str, Any]], kind: RecordKind, fmt: Format, out: TextIO, *, width: int | None = PIPE_WIDTH
) -> int:
    """Write `rows` (store query rows of `kind`) to `out` as `fmt`; returns the number of rows.

    `width`: the table's width in columns (None: every column, as wide as it takes)."""
    if fmt == "csv":
        return _write_csv(rows, COLUMNS[kind], out)
    if fmt == "json":
        return _write_json(rows, COLUMNS[kind], out)
    if fmt == "table":
        return _write_table(rows, kind, out, width)
    raise ValueError(f"unknown history format {fmt!r}; choose one of {', '.join(FORMATS)}")
