"""HTML (Jinja2, autoescaped, translated with the report's gettext catalogue) and CSV output."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports.decisions import channel_text
from reports.files import csv_text, open_new
from reports.i18n import Lang
from reports.labels import column_label
from reports.vocab import DIRECTION, EXCLUSION, HAZARD, METHOD, METRIC, RULE, SEVERITY, VERDICT, name

#: Rows of long tables shown in the HTML; the CSV files hold all of them.
MAX_HTML_ROWS = 20


class Names:
    """Translated display names for templates."""

    def __init__(self, lang: Lang) -> None:
        self._ = lang.gettext

    def hazard(self, key: str) -> str:
        return self._(name(HAZARD, key))

    def metric(self, key: str) -> str:
        return self._(name(METRIC, key))

    def rule(self, key: str) -> str:
        return self._(name(RULE, key))

    def severity(self, key: str) -> str:
        return self._(name(SEVERITY, key))

    def verdict(self, key: str) -> str:
        return self._(name(VERDICT, key))

    def method(self, key: str) -> str:
        return self._(name(METHOD, key))

    def direction(self, key: str) -> str:
        return self._(name(DIRECTION, key))

    def exclusion(self, key: str) -> str:
        return self._(name(EXCLUSION, key))


def css_string(text: object) -> Markup:
    """A CSS string literal (for `content:` in the page footer), safe inside <style>."""
    body = "".join(c if c.isalnum() or c in " .,·-_/()" else f"\\{ord(c):x} " for c in str(text))
    return Markup(f'"{body}"')  # only alphanumerics and a few punctuation marks pass unescaped


def environment(lang: Lang) -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(lang.tr, newstyle=True)  # type: ignore[attr-defined]
    env.filters["css_string"] = css_string
    return env


def render_html(summary: Mapping[str, Any], charts: Mapping[str, str], lang: Lang) -> str:
    """The report page; `charts` maps "site/dist/hazard", "site/alerts", "site/trend" to SVG."""
    template = environment(lang).get_template("monthly.html")
    return template.render(
        s=summary,
        charts={k: Markup(v) for k, v in charts.items()},  # our own matplotlib output
        fmt=lang,
        lang=lang,
        name=Names(lang),
        max_rows=MAX_HTML_ROWS,
        channel_text=lambda c: channel_text(lang, c),
        column=lambda key: column_label(lang, key),
    )


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, dict | list | tuple):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(v, bool):
        return "true" if v else "false"
    return csv_text(v)


def write_csv(
    path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], header: Sequence[str] | None = None
) -> int:
    """Write `rows` (missing keys empty, nested values as JSON) under `header` (default: the column
    keys); returns the count."""
    n = 0
    with open_new(path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header or columns)
        for row in rows:
            w.writerow([_cell(row.get(c)) for c in columns])
            n += 1
    return n


def json_default(obj: Any) -> Any:
    if isinstance(obj, float):
        return None
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def clean_floats(obj: Any) -> Any:
    """NaN/inf → None, recursively, so summary.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_floats(v) for v in obj]
    return obj
