"""Terminal text of `oshmon limits` and `oshmon status`: blocks that wrap at the terminal's width.

A limit's source and action are sentences; in table columns they wrap a word per line at 80
columns. Here every limit is one block: a heading line (hazard, rule, severity, threshold,
label), then each longer field on its own lines with a hanging indent.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from reports.history_table import printable as clean

#: Width when writing to a pipe or file and `COLUMNS` is not set.
PIPE_WIDTH = 100
#: Fields of a limit row shown in its heading line; every other field gets a line of its own.
_HEADING = ("hazard", "rule", "severity", "direction", "threshold", "unit", "label")
INDENT = "    "


def width() -> int:
    return max(40, shutil.get_terminal_size((PIPE_WIDTH, 24)).columns)


def field_lines(name: str, value: Any, cols: int, label_width: int) -> list[str]:
    head = f"{INDENT}{name:<{label_width}}  "
    return textwrap.wrap(
        clean(value), cols, initial_indent=head, subsequent_indent=" " * len(head), break_on_hyphens=False
    ) or [head.rstrip()]


def limit_blocks(profile: str, rows: Sequence[Mapping[str, Any]], cols: int) -> str:
    """Every limit of `profile` as a block of lines no wider than `cols` (long words excepted)."""
    out = [f"Limits of profile {profile} ({len(rows)}):", ""]
    if not rows:
        note = (
            f"Profile {profile} sets no limit: no reading is judged by it, and every hazard a site "
            "using it measures raises a not_judged alert. Its file names the regulations to take "
            "the values from (docs/exposure.md, National mining profiles)."
        )
        out += textwrap.wrap(note, cols)
    others = {k for r in rows for k in r if k not in _HEADING}
    extra = [k for k in ("source", "action") if k in others] + sorted(others - {"source", "action"})
    label_width = max((len(k) for k in extra), default=0)
    for r in rows:
        where = "≤" if r.get("direction") == "below" else "≥"
        head = f"{r.get('hazard')}  {r.get('rule')}  {r.get('severity')}  {where} {r.get('threshold')} {r.get('unit')}"
        out += textwrap.wrap(f"{clean(head)} — {clean(r.get('label'))}", cols, subsequent_indent=INDENT)
        for k in extra:
            if r.get(k) not in (None, ""):
                out += field_lines(k, r[k], cols, label_width)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def open_alert_lines(alert: Mapping[str, Any], cols: int) -> list[str]:
    """Two or more lines per open alert (from the checkpoint): the id line, then where and who."""
    sub = alert.get("subject") or {}
    head = f"  {alert.get('alert_id')}  {alert.get('severity')}  {alert.get('rule')}  {sub.get('hazard')}"
    where = f"at {sub.get('site')}/{sub.get('zone')}/{sub.get('device')}"
    if sub.get("worker"):
        where += f" (worker {sub['worker']})"
    where += f"; acknowledged by {alert['acked_by']}" if alert.get("acked_by") else "; not acknowledged"
    return [clean(head), *textwrap.wrap(clean(where), cols, initial_indent=" " * 6, subsequent_indent=" " * 8)]
