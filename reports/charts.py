"""Charts of the monthly report: matplotlib figures rendered to inline SVG (no pyplot state).

Every chart is self-contained SVG text (glyphs as paths, so it prints the same everywhere);
element ids are prefixed with the chart id so several charts can share one HTML page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.typing import RcKeyType

from reports.i18n import Lang
from reports.vocab import HAZARD, METRIC, RULE, SEVERITY, name

GREEN, AMBER, RED, DARK_RED, GREY = "#4c9a6a", "#e0a030", "#c0392b", "#7b1d14", "#8a8f98"
SEVERITY_COLOUR = {"warning": AMBER, "alarm": RED, "critical": DARK_RED, "malfunction": GREY}
#: Width of a chart in inches: fits the A4 text width (210 mm − 2 × 15 mm margins ≈ 7.1 in).
WIDTH_IN = 7.0
_RC: dict[RcKeyType, Any] = {
    "font.size": 8,
    "svg.fonttype": "path",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_ID = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _svg(fig: Figure, chart_id: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = _ID.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", text)
    return re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1class="chart-svg"', text, count=1)


def _figure(height_in: float, cols: int = 1) -> tuple[Figure, Any]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
        axes = fig.subplots(1, cols)
    return fig, axes


def _number_axis(axis: Any, lang: Lang) -> None:
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: lang.tick(x)))


def distribution_svg(hz: Mapping[str, Any], lang: Lang, chart_id: str) -> str:
    """Histogram of the valid shift values, bins coloured against the action level and limit."""
    _ = lang.gettext
    fig, ax = _figure(2.3)
    edges, counts = hz["histogram"]["edges"], hz["histogram"]["counts"]
    limit, action = hz["limit"], hz["action"]
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        mid = (lo + hi) / 2
        colour = RED if limit is not None and mid >= limit else AMBER if action is not None and mid >= action else GREEN
        ax.bar(lo, c, width=hi - lo, align="edge", color=colour, edgecolor="white", linewidth=0.4)
    for value, colour, label in ((action, AMBER, _("action level")), (limit, RED, _("limit value"))):
        if value is not None:
            ax.axvline(value, color=colour, linestyle="--", linewidth=1.2, label=f"{label}: {lang.num(value)}")
    if limit is not None or action is not None:
        ax.legend(frameon=False, loc="upper right")
    ax.set_xlabel(f"{_(name(METRIC, hz['metric']))} ({hz['unit']})")
    ax.set_ylabel(_("shifts"))
    _number_axis(ax.xaxis, lang)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _number_axis(ax.yaxis, lang)
    return _svg(fig, chart_id)


def trend_svg(months: Sequence[Mapping[str, Any]], lang: Lang, chart_id: str) -> str:
    """Share of shifts at/above the action level (left) and the limit (right), per hazard and month."""
    _ = lang.gettext
    fig, axes = _figure(2.6, cols=2)
    xs = list(range(len(months)))
    hazards = sorted({h for m in months for h in m["hazards"]})
    ticks = [lang.month_short(m["month"], with_year=i == 0 or m["month"].endswith("-01")) for i, m in enumerate(months)]
    titles = (_("at or above the action level"), _("at or above the limit value"))
    for ax, key, title in zip(axes, ("share_above_action", "share_above_limit"), titles, strict=True):
        for h in hazards:
            ys = [_pct(m["hazards"].get(h, {}).get(key)) for m in months]
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=_(name(HAZARD, h)))
        ax.set_title(title, fontsize=8)
        ax.set_xticks(xs, ticks)
        ax.set_xlim(-0.4, len(xs) - 0.6)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: lang.pct_tick(y / 100.0)))
    axes[0].set_ylabel(_("share of shifts"))
    if hazards:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(hazards), 3),
                   frameon=False, fontsize=7)  # fmt: skip
    return _svg(fig, chart_id)


def _pct(share: float | None) -> float:
    return math.nan if share is None else 100.0 * share


def _count(by_rule_severity: Sequence[Mapping[str, Any]], rule: str, severity: str) -> float:
    return float(sum(r["alerts"] for r in by_rule_severity if r["rule"] == rule and r["severity"] == severity))


def alerts_svg(by_rule_severity: Sequence[Mapping[str, Any]], lang: Lang, chart_id: str) -> str:
    """Alerts per rule as horizontal bars stacked by severity."""
    _ = lang.gettext
    rules = sorted({r["rule"] for r in by_rule_severity})
    fig, ax = _figure(0.6 + 0.28 * max(len(rules), 1))
    left = [0.0] * len(rules)
    for sev, colour in SEVERITY_COLOUR.items():
        counts = [_count(by_rule_severity, ru, sev) for ru in rules]
        if any(counts):
            ax.barh(range(len(rules)), counts, left=left, color=colour, label=_(name(SEVERITY, sev)), height=0.6)
            left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_yticks(range(len(rules)), [_(name(RULE, r)) for r in rules])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _number_axis(ax.xaxis, lang)
    ax.set_xlabel(_("alerts"))
    if rules:
        ax.legend(frameon=False, fontsize=7, loc="lower right")
    return _svg(fig, chart_id)
