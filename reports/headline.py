"""The plain-language headline of a site: better and worse than last month, serious events.

Each item keeps its numbers (for summary.json) and a sentence in the report language.
A change counts when it is large enough to matter to a committee (thresholds below), and only
between months with comparable data: a month with a fraction of the shift records of the other
says nothing about whether things got better (the headline says so, with both numbers).
What needs a decision is in `reports/decisions.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.i18n import Lang
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
#: Two months are compared only when each has at least this share of the other's valid shift
#: records (and at least MIN_COMPARABLE_SHIFTS): with half the monitoring, shares and alert
#: counts move for reasons that have nothing to do with exposure.
MIN_COMPARABLE_RATIO = 0.5
MIN_COMPARABLE_SHIFTS = 30

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


def comparable(now: int, before: int) -> bool:
    """Do two months have comparable data (valid shift records)? See MIN_COMPARABLE_RATIO."""
    if min(now, before) < MIN_COMPARABLE_SHIFTS:
        return False
    return before >= MIN_COMPARABLE_RATIO * now and now >= MIN_COMPARABLE_RATIO * before


def comparison(
    lang: Lang, month: str, hazards: Sequence[Mapping[str, Any]], previous: Mapping[str, Any] | None
) -> Item:
    """Whether this month is compared with the one before, and why not, with both numbers."""
    _ = lang.gettext
    now = sum(hz["shifts"] for hz in hazards)
    before = sum(f["shifts"] for f in previous["hazards"].values()) if previous else 0
    values = {"month": lang.month(previous_month(month)), "before": lang.int(before), "now": lang.int(now)}
    if previous is None:
        text, kind = _("There are no records for last month (%(month)s) to compare with."), "no_previous"
    elif comparable(now, before):
        text = _("Compared with %(month)s: %(before)s valid shift records then, %(now)s this month.")
        kind = "compared"
    else:
        text = _(
            "Not compared with last month: %(month)s has %(before)s valid shift records against %(now)s this "
            "month. A comparison needs each month to have at least half the records of the other."
        )
        kind = "not_comparable"
    return _item(kind, text % values, comparable=kind == "compared", now=now, before=before)


def previous_month(month: str) -> str:
    y, m = (int(p) for p in month.split("-"))
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


def changes(
    lang: Lang,
    hazards: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any] | None,
    alerts: Mapping[str, Any],
    compare: bool,
) -> dict[str, list[Item]]:
    """Better / worse items against last month, only when `compare` (comparable months); a hazard
    is compared only when its own valid shifts are comparable too. `previous`: {"hazards":
    {hazard: figures}, "segs": {seg: verdict}, "alerts": alert summary or None}."""
    scored: list[tuple[float, Item]] = []
    if previous is None or not compare:
        return {"better": [], "worse": []}
    for hz in hazards:
        before = previous["hazards"].get(hz["hazard"])
        if before and comparable(hz["shifts"], before["shifts"]):
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


def _zones(lang: Lang, zones: Sequence[Mapping[str, Any]], key: str) -> str:
    return "; ".join(f"{z['zone']}: {lang.int(z[key])}" for z in zones if z[key])


def serious(
    lang: Lang, listed: Sequence[Mapping[str, Any]], exceeded: Sequence[Mapping[str, Any]], unjudged: Sequence[str] = ()
) -> list[Item]:
    """Headline sentences: how many critical/escalated alerts (listed below), limits reached by zone.

    `unjudged`: hazards measured without any limit; they can raise no alert, so "no critical
    alerts" says so instead of sounding like "all safe"."""
    _ = lang.gettext
    critical = sum(1 for a in listed if a["severity"] == "critical")
    escalated = sum(1 for a in listed if a["escalations"])
    if not critical and not escalated:
        text = _("No critical or escalated alerts this month.")
    else:
        text = _("Critical alerts: %(critical)s; escalated alerts: %(escalated)s. Each one is listed below.")
    text %= {"critical": lang.int(critical), "escalated": lang.int(escalated)}
    items = [_item("serious_alerts", text, critical=critical, escalated=escalated)]
    if unjudged:
        text = lang.ngettext(
            "%(hazards)s is measured without a limit, so it could raise no alert: see “Needs a decision”.",
            "%(hazards)s are measured without a limit, so they could raise no alert: see “Needs a decision”.",
            len(unjudged),
        ) % {"hazards": ", ".join(_(name(HAZARD, h)) for h in unjudged)}
        items.append(_item("not_judged", text, hazards=list(unjudged)))
    for e in exceeded:
        hazard = _(name(HAZARD, e["hazard"]))
        if e["stel"]:
            text = lang.ngettext(
                "%(hazard)s: the 15-minute limit was exceeded in %(n)s shift (%(zones)s).",
                "%(hazard)s: the 15-minute limit was exceeded in %(n)s shifts (%(zones)s).",
                e["stel"],
            )
            text %= {"hazard": hazard, "n": lang.int(e["stel"]), "zones": _zones(lang, e["zones"], "stel")}
            items.append(_item("stel_exceeded", text, hazard=e["hazard"], count=e["stel"], zones=e["zones"]))
        if e["shift_limit"]:
            text = lang.ngettext(
                "%(hazard)s: the shift limit was reached in %(n)s shift (%(zones)s).",
                "%(hazard)s: the shift limit was reached in %(n)s shifts (%(zones)s).",
                e["shift_limit"],
            )
            text %= {
                "hazard": hazard,
                "n": lang.int(e["shift_limit"]),
                "zones": _zones(lang, e["zones"], "shift_limit"),
            }
            items.append(
                _item("shift_limit_reached", text, hazard=e["hazard"], count=e["shift_limit"], zones=e["zones"])
            )
    return items
