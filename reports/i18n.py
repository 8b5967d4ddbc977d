"""Report languages: gettext catalogues from `reports/locale/*/LC_MESSAGES/*.po`, Babel formats.

The `.po` files are the only source of translated text. They are compiled in memory when a
language is first used (Babel `read_po` → `write_mo`), so no binary `.mo` file is kept in the
repository or can go stale. Numbers, percentages, dates and durations use Babel with the
language's CLDR locale.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

DOMAIN = "oshmon_reports"
LOCALE_DIR = Path(__file__).parent / "locale"
#: Report language → CLDR locale for numbers and dates (Serbian in Latin script).
CLDR_LOCALE: dict[str, str] = {"en": "en_GB", "sr": "sr_Latn", "ru": "ru"}
LANGUAGES = tuple(CLDR_LOCALE)


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@lru_cache(maxsize=4 * len(CLDR_LOCALE))
def translations(lang: str, domain: str = DOMAIN) -> Translations:
    """The compiled catalogue of `lang`, built from its `.po` file (`domain`: `oshmon_reports`,
    or `oshmon_board` for the control-room board)."""
    if lang not in CLDR_LOCALE:
        raise ValueError(f"unknown report language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=CLDR_LOCALE[lang], domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=domain)


class Lang:
    """Translation and locale-aware formatting for one report language."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.tr = translations(code)
        self.locale = Locale.parse(CLDR_LOCALE[code])

    def gettext(self, message: str) -> str:
        return self.tr.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.tr.ngettext(singular, plural, n)

    def _percent(self, decimals: str) -> str:
        pattern: str = self.locale.percent_formats[None].pattern
        return pattern.replace("#,##0", "#,##0" + decimals, 1)

    @cached_property
    def _percent_pattern(self) -> str:
        return self._percent(".0")

    def pct_tick(self, share: float) -> str:
        """A share 0..1 as an axis tick percentage (no trailing zeros)."""
        return str(format_decimal(share, format=self._percent(".###"), locale=self.locale))

    def num(self, x: float | None, digits: int | None = None) -> str:
        """A number with `digits` decimals, or 3 significant digits (at most 3 decimals)."""
        if x is None or (isinstance(x, float) and not math.isfinite(x)):
            return "–"
        if digits is None:
            digits = 0 if x == 0 else max(0, min(3, 2 - math.floor(math.log10(abs(x)))))
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(x, format=fmt, locale=self.locale))

    def tick(self, x: float) -> str:
        """An axis tick: up to 3 decimals, no trailing zeros."""
        return str(format_decimal(x, format="#,##0.###", locale=self.locale))

    def int(self, n: int | None) -> str:
        return "–" if n is None else str(format_decimal(n, format="#,##0", locale=self.locale))

    def pct(self, share: float | None) -> str:
        """A share 0..1 as a percentage with one decimal."""
        if share is None:
            return "–"
        return str(format_decimal(share, format=self._percent_pattern, locale=self.locale))

    def date(self, d: date | str) -> str:
        """A date (or "YYYY-MM-DD") in the language's long form."""
        day = date.fromisoformat(d) if isinstance(d, str) else d
        return str(format_date(day, format="long", locale=self.locale))

    def datetime(self, t_s: float) -> str:
        dt = datetime.fromtimestamp(t_s, tz=UTC)
        return str(format_datetime(dt, format="short", tzinfo=UTC, locale=self.locale)) + " UTC"

    def month(self, ym: str) -> str:
        """`YYYY-MM` → the stand-alone month name and year ("November 2026", "новембар 2026")."""
        y, m = (int(p) for p in ym.split("-"))
        text = str(format_date(date(y, m, 1), format="LLLL y", locale=self.locale))
        return text[:1].upper() + text[1:]

    def month_short(self, ym: str, *, with_year: bool = True) -> str:
        """Abbreviated stand-alone month, for chart axes ("Nov", or "Nov\n2026" with the year)."""
        y, m = (int(p) for p in ym.split("-"))
        text = str(format_date(date(y, m, 1), format="LLL", locale=self.locale))
        return f"{text}\n{y}" if with_year else text

    def unit(self, code: str) -> str:
        """A stored unit code ("%vol", "mg/m3") as readers of this language write it."""
        from reports.vocab import UNIT, UNITLESS  # vocab marks its strings with N_ from this module

        if code in UNITLESS:
            return ""
        return self.gettext(UNIT[code]) if code in UNIT else code

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "–"
        td = timedelta(seconds=seconds)
        return str(format_timedelta(td, threshold=1.5, format="short", locale=self.locale))
