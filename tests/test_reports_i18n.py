"""Report translations: every message in the code and templates is translated in sr and ru,
with the same placeholders, and the catalogues compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from reports.i18n import CLDR_LOCALE, DOMAIN, LOCALE_DIR, Lang

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
METHODS = [("reports/**.py", "python"), ("reports/templates/**.html", "jinja2")]
OPTIONS = {"reports/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def source_messages() -> set[str]:
    """msgids in the sources now (singular form), as `pybabel extract` finds them."""
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(ROOT, METHODS, OPTIONS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _key(msgid: object) -> str:
    return str(msgid[0] if isinstance(msgid, tuple | list) else msgid)


def catalog(lang: str) -> dict[str, tuple[str, ...]]:
    """msgid → its translation forms (one, or one per plural form)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as fh:
        cat = read_po(fh, locale=CLDR_LOCALE[lang])
    out: dict[str, tuple[str, ...]] = {}
    for m in cat:
        if m.id:
            forms = m.string if isinstance(m.string, tuple | list) else (m.string,)
            out[_key(m.id)] = tuple(str(f or "") for f in forms)
    return out


def test_template_catalogue_is_up_to_date() -> None:
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as fh:
        pot = {_key(m.id) for m in read_po(fh) if m.id}
    assert source_messages() == pot, "run pybabel extract/update (see reports/locale/babel.cfg)"


@pytest.mark.parametrize("lang", ["sr", "ru"])
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    cat = catalog(lang)
    for msgid in source_messages():
        assert msgid in cat, f"{lang}: missing {msgid!r}"
        forms = cat[msgid]
        assert len(forms) in (1, 3) and all(forms), f"{lang}: untranslated {msgid!r}"
        want = set(PLACEHOLDER.findall(msgid))
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) == want, f"{lang}: placeholders differ in {msgid!r}"
            if want or "%%" in msgid:  # a formatted message: every other % must be escaped
                assert form.count("%") - form.count("%%") * 2 == len(PLACEHOLDER.findall(form)), form


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("en", "Needs a decision"), ("sr", "Potrebna je odluka"), ("ru", "Требуется решение")],
)
def test_catalogues_compile_and_translate(lang: str, expected: str) -> None:
    assert Lang(lang).gettext("Needs a decision") == expected


def test_numbers_and_dates_follow_the_language() -> None:
    en, sr, ru = Lang("en"), Lang("sr"), Lang("ru")
    assert (en.num(1234.5, 1), sr.num(1234.5, 1), ru.num(1234.5, 1)) == ("1,234.5", "1.234,5", "1\xa0234,5")
    assert (en.pct(0.125), sr.pct(0.125)) == ("12.5%", "12,5%")
    assert ru.pct(0.125) == "12,5\xa0%"
    assert (en.month("2026-11"), sr.month("2026-11"), ru.month("2026-11")) == (
        "November 2026",
        "Novembar 2026",
        "Ноябрь 2026",
    )
    assert ru.date("2026-11-30") == "30 ноября 2026\u202fг."  # CLDR: narrow no-break space
    with pytest.raises(ValueError, match="unknown report language"):
        Lang("de")


#: Names that are the same word in a language (not an untranslated leak).
SAME_WORD = {("sr", "alarm")}


@pytest.mark.parametrize("lang", ["en", "sr", "ru"])
def test_every_rule_hazard_severity_and_direction_code_has_a_translated_name(lang: str) -> None:
    """A code added to the enums later (as `not_judged`, `twa_projected`, `mixture` were) fails
    here until vocab.py names it and sr/ru translate it: the report never shows a raw code."""
    from reports.labels import labels
    from reports.vocab import DIRECTION, HAZARD, METRIC, RULE, SEVERITY
    from rules.results import Direction
    from rules.types import Hazard, RuleKind, Severity

    lng = Lang(lang)
    shown = labels(lng)
    for enum, table, part in ((RuleKind, RULE, "rule"), (Hazard, HAZARD, "hazard"), (Severity, SEVERITY, "severity"),
                              (Direction, DIRECTION, "direction")):  # fmt: skip
        for member in enum:
            code = member.value
            assert code in table, f"reports/vocab.py has no {part} name for {code!r}"
            text = lng.gettext(table[code])
            assert text.strip(), f"{lang}: {part} {code!r} has an empty name"
            assert "_" not in text, f"{lang}: {part} {code!r} is named like a code: {text!r}"
            if lang != "en":
                assert text != table[code] or (lang, code) in SAME_WORD, f"{lang}: {part} {code!r} untranslated"
            assert shown[part][code] == text
    assert {"twa8", "shift_avg", "lex8h", "dose"} <= set(METRIC)
