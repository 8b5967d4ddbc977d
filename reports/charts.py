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

#: The Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008, "Color Universal Design").
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}  # fmt: skip
GREY = "#b8bcc4"
#: One style per hazard, the same in every chart: an Okabe–Ito colour, and a marker that no other
#: hazard uses and a dash pattern, so that lines stay apart in greyscale print too.
HAZARD_STYLE: dict[str, tuple[str, str, str]] = {
    "co": (OKABE_ITO["vermillion"], "o", "-"), "silica": (OKABE_ITO["blue"], "s", "-"),
    "so2": (OKABE_ITO["bluish_green"], "^", "-"), "dpm": (OKABE_ITO["black"], "D", "-"),
    "noise": (OKABE_ITO["reddish_purple"], "v", "-"), "respirable_dust": (OKABE_ITO["orange"], "P", "-"),
    "ch4": (OKABE_ITO["sky_blue"], "X", "--"), "co2": (OKABE_ITO["orange"], "h", "--"),
    "h2s": (OKABE_ITO["vermillion"], "<", "--"), "no": (OKABE_ITO["blue"], ">", "--"),
    "no2": (OKABE_ITO["bluish_green"], "p", "--"), "o2": (OKABE_ITO["sky_blue"], "*", "-"),
    "noise_peak": (OKABE_ITO["reddish_purple"], "d", ":"),
}  # fmt: skip
FALLBACK_STYLE = (OKABE_ITO["black"], "+", ":")
#: Distribution bins: below the action level, from it, from the limit (hatched), no limit at all.
BIN_BELOW, BIN_ACTION, BIN_LIMIT, BIN_UNJUDGED = (
    OKABE_ITO["sky_blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["vermillion"],
    GREY,
)
LIMIT_HATCH = "////"
SEVERITY_STYLE = {  # colour, hatch
    "warning": (OKABE_ITO["orange"], ""), "alarm": (OKABE_ITO["vermillion"], "////"),
    "critical": (OKABE_ITO["black"], ""), "malfunction": (OKABE_ITO["sky_blue"], ".."),
}  # fmt: skip
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


def _bin_style(mid: float, limit: float | None, action: float | None) -> tuple[str, str]:
    if limit is None and action is None:
        return BIN_UNJUDGED, ""
    if limit is not None and mid >= limit:
        return BIN_LIMIT, LIMIT_HATCH
    return (BIN_ACTION if action is not None and mid >= action else BIN_BELOW), ""


def distribution_figure(hz: Mapping[str, Any], lang: Lang) -> Figure:
    """Histogram of the valid shift values, bins coloured against the action level and limit.

    The legend sits outside the axes (above them), so no bar or limit line ever crosses it.
    """
    _ = lang.gettext
    fig, ax = _figure(2.4)
    edges, counts = hz["histogram"]["edges"], hz["histogram"]["counts"]
    limit, action = hz["limit"], hz["action"]
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        colour, hatch = _bin_style((lo + hi) / 2, limit, action)
        ax.bar(lo, c, width=hi - lo, align="edge", color=colour, edgecolor="white", linewidth=0.4, hatch=hatch)
    unit = lang.unit(hz["unit"])
    lines = ((action, BIN_ACTION, (0, (4, 2)), _("action level")), (limit, BIN_LIMIT, "-", _("limit value")))
    for value, colour, style, label in lines:
        if value is not None:
            ax.axvline(value, color=colour, linestyle=style, linewidth=1.4, label=f"{label}: {lang.num(value)} {unit}")
    if limit is not None or action is not None:
        fig.legend(loc="outside upper right", ncols=2, frameon=False, fontsize=7)
    ax.set_xlabel(f"{_(name(METRIC, hz['metric']))} ({unit})")
    ax.set_ylabel(_("shifts"))
    _number_axis(ax.xaxis, lang)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _number_axis(ax.yaxis, lang)
    return fig


def distribution_svg(hz: Mapping[str, Any], lang: Lang, chart_id: str) -> str:
    return _svg(distribution_figure(hz, lang), chart_id)


def hazard_style(hazard: str) -> tuple[str, str, str]:
    """(colour, marker, dash) of a hazard: the same in every chart."""
    return HAZARD_STYLE.get(hazard, FALLBACK_STYLE)


def trend_figure(months: Sequence[Mapping[str, Any]], lang: Lang) -> Figure:
    """Share of shifts at/above the action level (left) and the limit (right), per hazard and month.

    Only hazards with a share in some month; each keeps its `HAZARD_STYLE`; the legend is below
    both plots, outside them.
    """
    _ = lang.gettext
    fig, axes = _figure(2.8, cols=2)
    xs = list(range(len(months)))
    keys = ("share_above_action", "share_above_limit")
    hazards = sorted({h for m in months for h, f in m["hazards"].items() if any(f.get(k) is not None for k in keys)})
    ticks = [lang.month_short(m["month"], with_year=i == 0 or m["month"].endswith("-01")) for i, m in enumerate(months)]
    titles = (_("at or above the action level"), _("at or above the limit value"))
    for ax, key, title in zip(axes, keys, titles, strict=True):
        for h in hazards:
            ys = [_pct(m["hazards"].get(h, {}).get(key)) for m in months]
            colour, marker, dash = hazard_style(h)
            ax.plot(xs, ys, color=colour, marker=marker, linestyle=dash, markersize=4, linewidth=1.3,
                    label=_(name(HAZARD, h)))  # fmt: skip
        ax.set_title(title, fontsize=8)
        ax.set_xticks(xs, ticks)
        ax.set_xlim(-0.4, len(xs) - 0.6)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: lang.pct_tick(y / 100.0)))
    axes[0].set_ylabel(_("share of shifts"))
    if hazards:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(hazards), 4),
                   frameon=False, fontsize=7)  # fmt: skip
    return fig


def trend_svg(months: Sequence[Mapping[str, Any]], lang: Lang, chart_id: str) -> str:
    return _svg(trend_figure(months, lang), chart_id)


def _pct(share: float | None) -> float:
    return math.nan if share is None else 100.0 * share


def _count(by_rule_severity: Sequence[Mapping[str, Any]], rule: str, severity: str) -> float:
    return float(sum(r["alerts"] for r in by_rule_severity if r["rule"] == rule and r["severity"] == severity))


def alerts_figure(by_rule_severity: Sequence[Mapping[str, Any]], lang: Lang) -> Figure:
    """Alerts per rule as horizontal bars stacked by severity; the legend above, outside the bars."""
    _ = lang.gettext
    rules = sorted({r["rule"] for r in by_rule_severity})
    fig, ax = _figure(1.3 + 0.28 * max(len(rules), 1))
    left = [0.0] * len(rules)
    for sev, (colour, hatch) in SEVERITY_STYLE.items():
        counts = [_count(by_rule_severity, ru, sev) for ru in rules]
        if any(counts):
            ax.barh(range(len(rules)), counts, left=left, color=colour, hatch=hatch, edgecolor="white",
                    linewidth=0.4, label=_(name(SEVERITY, sev)), height=0.6)  # fmt: skip
            left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_yticks(range(len(rules)), [_(name(RULE, r)) for r in rules])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _number_axis(ax.xaxis, lang)
    ax.set_xlabel(_("alerts"))
    if rules:
        fig.legend(loc="outside upper right", ncols=4, frameon=False, fontsize=7)
    return fig


def alerts_svg(by_rule_severity: Sequence[Mapping[str, Any]], lang: Lang, chart_id: str) -> str:
    return _svg(alerts_figure(by_rule_severity, lang), chart_id)
