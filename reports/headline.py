"""The plain-language headline of a site: better, worse, and what needs a decision.

Each item keeps its numbers (for summary.json) and a sentence in the report language.
A change counts when it is large enough to matter to a committee (thresholds below).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.i18n import Lang
from reports.quality import LOW_COMPLETENESS
from reports.vocab import HAZARD, VERDICT, name

#: A share of shifts must move by at least this much (1 percentage point) to be news.
MIN_SHARE_CHANGE = 0.01
#: Alert counts must move by at least this many and this fraction.
MIN_ALERT_CHANGE = 2
MIN_RELATIVE_CHANGE = 0.20
#: Median time to acknowledge must move by at least this many seconds (and 20 %).
MIN_ACK_CHANGE_S = 30.0
#: Non-compliant SEGs named one by one before they are summarised.
MAX_NAMED_SEGS = 6

#: Order of the better/worse items: verdicts first, then limit, action level, alerts.
KIND_ORDER = {k: i for i, k in enumerate(
    ("en689_verdict", "share_above_limit", "share_above_action", "urgent_alerts", "ack_median"))}  # fmt: skip

Item = dict[str, Any]


def _item(kind: str, text: str, **numbers: Any) -> Item:
    return {"kind": kind, "text": text, **numbers}


def _share_items(lang: Lang, hz: Mapping[str, Any], before: Mapping[str, Any]) -> list[tuple[float, Item]]:
    out = []
    _ = lang.gettext
    texts = {
        "share_above_action": _("%(hazard)s: %(now)s of shifts reached the action level (last month %(before)s)."),
        "share_above_limit": _("%(hazard)s: %(now)s of shifts reached the limit value (last month %(before)s)."),
    }
    for key, text in texts.items():
        now, was = hz.get(key), before.get(key)
        if now is None or was is None or abs(now - was) < MIN_SHARE_CHANGE:
            continue
        sentence = text % {
            "hazard": _(name(HAZARD, hz["hazard"])),
            "now": lang.pct(now),
            "before": lang.pct(was),
        }
        out.append((now - was, _item(key, sentence, hazard=hz["hazard"], now=now, before=was)))
    return out


def _group(lang: Lang, hazard: str, seg: Mapping[str, Any]) -> str:
    """ "Carbon monoxide (CO), face-3" — the hazard and the SEG's short label."""
    hazard_name = lang.gettext(name(HAZARD, hazard))
    return f"{hazard_name}, {seg['label']}" if seg["label"] else hazard_name


def _seg_items(lang: Lang, hz: Mapping[str, Any], before: Mapping[str, str]) -> list[tuple[float, Item]]:
    out = []
    _ = lang.gettext
    for s in hz["segs"]:
        was, now = before.get(s["seg"]), s["verdict"]
        if was is None or was == now or "non_compliant" not in (was, now):
            continue
        text = _("%(group)s: the EN 689 verdict changed from “%(before)s” to “%(now)s”.") % {
            "group": _group(lang, hz["hazard"], s),
            "before": _(name(VERDICT, was)),
            "now": _(name(VERDICT, now)),
        }
        out.append(
            (
                1.0 if now == "non_compliant" else -1.0,
                _item("en689_verdict", text, seg=s["seg"], now=now, before=was),
            )
        )
    return out


def _changed(now: float, was: float, minimum: float) -> bool:
    return abs(now - was) >= minimum and abs(now - was) >= MIN_RELATIVE_CHANGE * max(abs(was), 1e-9)


def _alert_items(lang: Lang, now: Mapping[str, Any], was: Mapping[str, Any] | None) -> list[tuple[float, Item]]:
    if not was:
        return []
    _ = lang.gettext
    out = []
    if _changed(now["urgent"], was["urgent"], MIN_ALERT_CHANGE):
        text = _("Alarms and critical alerts: %(now)s (last month %(before)s).") % {
            "now": lang.int(now["urgent"]),
            "before": lang.int(was["urgent"]),
        }
        out.append(
            (
                now["urgent"] - was["urgent"],
                _item("urgent_alerts", text, now=now["urgent"], before=was["urgent"]),
            )
        )
    m_now, m_was = now.get("ack_median_s"), was.get("ack_median_s")
    if m_now is not None and m_was is not None and _changed(m_now, m_was, MIN_ACK_CHANGE_S):
        text = _("Median time to acknowledge an alert: %(now)s (last month %(before)s).") % {
            "now": lang.duration(m_now),
            "before": lang.duration(m_was),
        }
        out.append((m_now - m_was, _item("ack_median", text, now=m_now, before=m_was)))
    return out


def changes(
    lang: Lang,
    hazards: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any],
    alerts: Mapping[str, Any],
) -> dict[str, list[Item]]:
    """Better / worse items against last month. `previous`: {"hazards": {hazard: figures},
    "segs": {seg: verdict}, "alerts": alert summary or None}."""
    scored: list[tuple[float, Item]] = []
    for hz in hazards:
        before = previous["hazards"].get(hz["hazard"])
        if before:
            scored += _share_items(lang, hz, before)
        scored += _seg_items(lang, hz, previous["segs"])
    scored += _alert_items(lang, alerts, previous.get("alerts"))

    def order(pair: tuple[float, Item]) -> tuple[int, float]:
        return KIND_ORDER.get(pair[1]["kind"], len(KIND_ORDER)), -abs(pair[0])

    ranked = sorted(scored, key=order)
    return {
        "better": [item for delta, item in ranked if delta < 0],
        "worse": [item for delta, item in ranked if delta > 0],
    }


def _non_compliant(lang: Lang, hz: Mapping[str, Any]) -> list[Item]:
    _ = lang.gettext
    items = []
    bad = [s for s in hz["segs"] if s["verdict"] == "non_compliant"]
    for s in bad[:MAX_NAMED_SEGS]:
        values = {"group": _group(lang, hz["hazard"], s), "oelv": lang.num(s["oelv"]), "unit": hz["unit"]}
        if s["utl"] is not None:
            text = _(
                "%(group)s is not compliant with EN 689: the upper tolerance limit UTL95,70 is %(utl)s "
                "%(unit)s, the limit value %(oelv)s %(unit)s. Decide on control measures."
            )
            values["utl"] = lang.num(s["utl"])
        else:
            text = _(
                "%(group)s is not compliant with EN 689: a shift exceeded the limit value of %(oelv)s "
                "%(unit)s. Decide on control measures."
            )
        items.append(_item("en689_non_compliant", text % values, seg=s["seg"], utl=s["utl"], oelv=s["oelv"]))
    if len(bad) > MAX_NAMED_SEGS:
        rest = len(bad) - MAX_NAMED_SEGS
        text = lang.ngettext(
            "… and %(n)s more group is not compliant (see the EN 689 table).",
            "… and %(n)s more groups are not compliant (see the EN 689 table).",
            rest,
        )
        items.append(_item("en689_non_compliant_more", text % {"n": lang.int(rest)}, count=rest))
    return items


def _seg_decisions(lang: Lang, hz: Mapping[str, Any]) -> list[Item]:
    """Non-compliant and undecided SEGs; for hazards without EN 689, shifts above the limit."""
    items = _non_compliant(lang, hz)
    unsure = [_group(lang, hz["hazard"], s) for s in hz["segs"] if s["verdict"] in ("no_decision", "insufficient")]
    if unsure:
        text = lang.ngettext(
            "%(n)s group has too few valid shifts for an EN 689 verdict: decide how to measure it (%(segs)s).",
            "%(n)s groups have too few valid shifts for an EN 689 verdict: decide how to measure them (%(segs)s).",
            len(unsure),
        ) % {"n": lang.int(len(unsure)), "segs": "; ".join(unsure[:MAX_NAMED_SEGS])}
        items.append(_item("en689_undecided", text, segs=unsure))
    if not hz["segs"] and hz.get("above_limit"):
        text = lang.gettext("%(hazard)s: shifts at or above the limit value: %(n)s. Decide on measures.") % {
            "hazard": lang.gettext(name(HAZARD, hz["hazard"])),
            "n": lang.int(hz["above_limit"]),
        }
        items.append(_item("above_limit", text, hazard=hz["hazard"], count=hz["above_limit"]))
    return items


def _devices(lang: Lang, devices: Sequence[str]) -> dict[str, str]:
    shown = ", ".join(devices[:10]) + (" …" if len(devices) > 10 else "")
    return {"n": lang.int(len(devices)), "devices": shown, "pct": lang.pct(LOW_COMPLETENESS)}


def _quality_decisions(lang: Lang, alerts: Mapping[str, Any], quality: Mapping[str, Any]) -> list[Item]:
    items = []
    n = alerts["urgent_unacknowledged"]
    if n:
        text = lang.ngettext(
            "%(n)s alarm was never acknowledged: decide who follows it up.",
            "%(n)s alarms were never acknowledged: decide who follows them up.",
            n,
        )
        items.append(_item("unacknowledged", text % {"n": lang.int(n)}, count=n))
    late = quality["calibration_overdue"]
    if late:
        text = lang.ngettext(
            "Calibration is overdue on %(n)s device: %(devices)s.",
            "Calibration is overdue on %(n)s devices: %(devices)s.",
            len(late),
        )
        items.append(_item("calibration_overdue", text % _devices(lang, late), devices=list(late)))
    low = quality["low_completeness"]
    if low:
        text = lang.ngettext(
            "%(n)s device delivered less than %(pct)s of the expected data: %(devices)s.",
            "%(n)s devices delivered less than %(pct)s of the expected data: %(devices)s.",
            len(low),
        )
        items.append(_item("low_completeness", text % _devices(lang, low), devices=list(low)))
    return items


def decisions(
    lang: Lang, hazards: Sequence[Mapping[str, Any]], alerts: Mapping[str, Any], quality: Mapping[str, Any]
) -> list[Item]:
    items = [i for hz in hazards for i in _seg_decisions(lang, hz)]
    items += _quality_decisions(lang, alerts, quality)
    if not items:
        items.append(_item("none", lang.gettext("Nothing this month needs a decision by the committee.")))
    return items
