"""Screenshots of the monthly report for docs/reports.md (docs/img/).

    .venv/bin/python scripts/report_screenshots.py REPORT_DIR_EN REPORT_DIR_SR REPORT_DIR_RU [--pages 4,7]

Each REPORT_DIR holds a report.html (`oshmon report monthly ... --out DIR`). Writes
docs/img/report-{lang}.png (the first two A4 pages on screen) and, from the English report printed
to PDF by Chromium, docs/img/report-print-{page}.png (needs `pdftoppm`, Debian's poppler-utils).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chromium import A4_HEIGHT_PX, A4_WIDTH_PX, headless_page  # noqa: E402

IMG = ROOT / "docs" / "img"


def main(dirs: list[str], pages: list[int]) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, headless_page("chromium", Path(tmp) / "profile") as page:
        for d in dirs:
            html = Path(d) / "report.html"
            lang = html.read_text(encoding="utf-8").split('lang="', 1)[1][:2]
            page.open(html)
            clip = {"x": 0, "y": 0, "width": A4_WIDTH_PX, "height": 2 * A4_HEIGHT_PX, "scale": 1}
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
            (IMG / f"report-{lang}.png").write_bytes(base64.b64decode(shot["data"]))
            if lang == "en":
                pdf = Path(tmp) / "report.pdf"
                pdf.write_bytes(page.pdf())
                for n in pages:
                    out = IMG / f"report-print-{n}"
                    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(n), "-l", str(n), "-singlefile",
                                    str(pdf), str(out)], check=True)  # fmt: skip
                print(f"printed pages: {subprocess.run(['pdfinfo', str(pdf)], capture_output=True, text=True).stdout}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--pages")]
    chosen = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--pages=")), "1,2")
    main(args, [int(p) for p in chosen.split(",")])
