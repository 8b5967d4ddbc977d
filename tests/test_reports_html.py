"""report.html in headless Debian chromium: no console errors, every chart drawn, A4 print layout.

Screenshots and the printed PDF are saved in the test's tmp_path (and copied to
$OSHMON_REPORT_ARTIFACTS when set, to look at them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reports.monthly import build_monthly
from storage.sqlite import SqliteStore
from tests.chromium import A4_WIDTH_PX, chromium_or_skip, headless_page
from tests.report_data import PROFILE_ROWS, MonthSpec, alert_events, exposures

NOW = datetime.fromisoformat("2026-12-01T08:00:00Z").timestamp()
CHART_JS = """JSON.stringify({
  charts: [...document.querySelectorAll('figure.chart')].map(f => {
    const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {kind: f.dataset.chart, hazard: f.dataset.hazard || null, width: r.width, height: r.height,
            shapes: svg ? svg.querySelectorAll('path, use').length : 0};
  }),
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  title: document.title,
})"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    st.write_exposures(list(exposures(MonthSpec(gm_scale=0.6, seed=3), "2026-10")))
    st.write_exposures(list(exposures(MonthSpec(), "2026-11")))
    st.write_alert_events(alert_events(MonthSpec(), "2026-11", 50))
    yield st
    st.close()


def expected_charts(summary: dict[str, Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for site in summary["sites"]:
        out += [("distribution", h["hazard"]) for h in site["hazards"] if h["shifts"]]
        out += [("alerts", None)] if site["alerts"]["alerts"] else []
        out.append(("trend", None))
    return out


def keep(path: Path) -> None:
    if target := os.environ.get("OSHMON_REPORT_ARTIFACTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_report_renders_cleanly_with_all_charts(store: SqliteStore, tmp_path: Path, lang: str) -> None:
    chromium = chromium_or_skip()
    html = build_monthly(store, "2026-11", None, lang, tmp_path / "report", limits_profile_rows=PROFILE_ROWS,
                         pseudonym_key=b"k", now_s=NOW)  # fmt: skip
    summary = json.loads((html.parent / "summary.json").read_text())
    with headless_page(chromium, tmp_path / "profile") as page:
        page.open(html)
        seen = json.loads(page.evaluate(CHART_JS))
        shot = tmp_path / f"report-{lang}.png"
        page.screenshot(shot)
        keep(shot)
        page.call("Emulation.setEmulatedMedia", media="print")
        printed = json.loads(page.evaluate(CHART_JS))
        pdf = page.pdf()
        problems = page.problems()
    assert problems == []
    assert [(c["kind"], c["hazard"]) for c in seen["charts"]] == expected_charts(summary)
    for chart in seen["charts"]:
        assert chart["width"] >= 0.75 * A4_WIDTH_PX and chart["height"] > 100, chart  # fills the text width
        assert chart["shapes"] > 20, chart  # bars, lines, glyphs
    assert seen["scrollWidth"] <= seen["clientWidth"], "the page is wider than A4"
    assert printed["scrollWidth"] <= printed["clientWidth"], "the print layout is wider than A4"
    assert pdf.startswith(b"%PDF")
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert box is not None
    assert (round(float(box.group(1))), round(float(box.group(2)))) == (595, 842)  # A4 in points
    assert shot.stat().st_size > 50_000
    (tmp_path / f"report-{lang}.pdf").write_bytes(pdf)
    keep(tmp_path / f"report-{lang}.pdf")
    footers_on_every_page(tmp_path / f"report-{lang}.pdf", summary)


def footers_on_every_page(pdf: Path, summary: dict[str, Any]) -> None:
    """Every printed page has "page N / M" and a site's name in its footer (read back with pdftotext)."""
    if shutil.which("pdftotext") is None:
        msg = "pdftotext not found: install Debian's poppler-utils (make test does this as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    import subprocess

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1]
    assert len(pages) > 3
    sites = [s["site"] for s in summary["sites"]]
    for n, page in enumerate(pages, start=1):
        assert re.search(rf"\b{n} / {len(pages)}\s*$", page.rstrip()), f"page {n}: no page number"
        if n < len(pages) - 1:  # the appendix pages carry the report's title instead of a site
            assert any(site in page.strip().splitlines()[-1] for site in sites), f"page {n}: no site in the footer"


def test_the_console_check_catches_a_blocked_request(tmp_path: Path) -> None:
    """Negative control: a page that loads something from outside breaks the CSP and is reported."""
    chromium = chromium_or_skip()
    page_file = tmp_path / "bad.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><img src="https://example.invalid/x.png"></body></html>'
    )
    with headless_page(chromium, tmp_path / "profile") as page:
        page.open(page_file)
        problems = page.problems()
    assert any("Content Security Policy" in p for p in problems), problems
