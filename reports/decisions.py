"""What needs a decision by the committee, per site: one item per thing to decide, in the report
language, with its numbers (summary.json).

Computed per hazard channel (zone, device, hazard, wearer), never from auxiliary channels (the
noise peak) that no decision depends on. A site without data this month gets a "no data" item,
never "nothing needs a decision": an empty month is not a safe month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.headline import MAX_NAMED_SEGS, Item, _group, _item
from reports.i18n import Lang
from reports.quality import LOW_COMPLETENESS
from reports.vocab import HAZARD, name

#: Channels and devices named one by one in a decision item before "…".
MAX_NAMED = 10


def _non_compliant(lang: Lang, hz: Mapping[str, Any]) -> list[Item]:
    _ = lang.gettext
    items = []
    bad = [s for s in hz["segs"] if s["verdict"] == "non_compliant"]
    for s in bad[:MAX_NAMED_SEGS]:
        values = {"group": _group(lang, hz["hazard"], s), "oelv": lang.num(s["oelv"]), "unit": lang.unit(hz["unit"])}
        if s["utl"] is not None:
            text = _(
                "%(group)s is not compliant with EN 689: the upper estimate of a high shift is %(utl)s %(unit)s, "
                "the limit value %(oelv)s %(unit)s. Decide on control measures."
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
    unsure = [_group(lang, hz["hazard"], s) for s in hz["segs"]
              if s["verdict"] in ("no_decision", "insufficient") and s.get("reason") != "no_loq"]  # fmt: skip
    if unsure:
        text = lang.ngettext(
            "%(n)s group has too few valid shifts for an EN 689 verdict: decide how to measure it (%(segs)s).",
            "%(n)s groups have too few valid shifts for an EN 689 verdict: decide how to measure them (%(segs)s).",
            len(unsure),
        ) % {"n": lang.int(len(unsure)), "segs": "; ".join(unsure[:MAX_NAMED_SEGS])}
        items.append(_item("en689_undecided", text, segs=unsure))
    if any(s.get("reason") == "no_loq" for s in hz["segs"]):
        text = lang.gettext(
            "%(hazard)s: some shifts detected nothing and no limit of quantification is configured, so EN 689 "
            "cannot judge them. Set the instruments' limit of quantification."
        ) % {"hazard": lang.gettext(name(HAZARD, hz["hazard"]))}
        items.append(_item("en689_no_loq", text, hazard=hz["hazard"]))
    if not hz["segs"] and hz.get("above_limit"):
        text = lang.gettext("%(hazard)s: shifts at or above the limit value: %(n)s. Decide on measures.") % {
            "hazard": lang.gettext(name(HAZARD, hz["hazard"])),
            "n": lang.int(hz["above_limit"]),
        }
        items.append(_item("above_limit", text, hazard=hz["hazard"], count=hz["above_limit"]))
    return items


def unjudged(hazards: Sequence[Mapping[str, Any]], alerts: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """profile → the hazards measured on the site that it sets no limit at all for: from the shift
    records (a hazard watched reading by reading, like methane, is judged, only not per shift)
    and from the gateway's `not_judged` configuration alerts (`alerts`: hazard → alert)."""
    by_profile: dict[str, list[str]] = {}
    for hz in hazards:
        if not hz["judged"] and not hz.get("instant_levels"):
            for profile in hz["profiles"] or ["–"]:
                by_profile.setdefault(profile, []).append(hz["hazard"])
    named = {h for hs in by_profile.values() for h in hs}
    for hazard, a in sorted(alerts.items()):
        if hazard not in named:
            by_profile.setdefault(a.get("profile") or "–", []).append(hazard)
    return by_profile


def _not_judged(lang: Lang, by_profile: Mapping[str, Sequence[str]]) -> list[Item]:
    """One item per profile: the hazards it leaves unjudged (`unjudged`)."""
    items = []
    for profile, hazard_keys in sorted(by_profile.items()):
        text = lang.ngettext(
            "%(hazards)s is measured but not judged: there is no limit for it in profile %(profile)s. "
            "Decide which limit applies.",
            "%(hazards)s are measured but not judged: there is no limit for them in profile %(profile)s. "
            "Decide which limits apply.",
            len(hazard_keys),
        ) % {"hazards": ", ".join(lang.gettext(name(HAZARD, h)) for h in hazard_keys), "profile": profile}
        items.append(_item("not_judged", text, profile=profile, hazards=list(hazard_keys)))
    return items


def channel_text(lang: Lang, c: Mapping[str, Any]) -> str:
    """ "nd-2 in face-3 (Noise, personal monitor of W-1a2b…): 45.0%" — where and what a channel is."""
    _ = lang.gettext
    kind = (_("personal monitor of %(worker)s") % {"worker": c["worker"]}) if c["worker"] else _("fixed monitor")
    return _("%(device)s in %(zone)s (%(hazard)s, %(kind)s): %(pct)s") % {
        "device": c["device"], "zone": c["zone"], "hazard": _(name(HAZARD, c["hazard"])), "kind": kind,
        "pct": lang.pct(c["completeness"]),
    }  # fmt: skip


def _named(lang: Lang, texts: Sequence[str]) -> str:
    return "; ".join(texts[:MAX_NAMED]) + (" …" if len(texts) > MAX_NAMED else "")


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
        shown = _named(lang, [f"{d['device']} ({d['zone']})" for d in late])
        items.append(_item("calibration_overdue", text % {"n": lang.int(len(late)), "devices": shown},
                           devices=[d["device"] for d in late]))  # fmt: skip
    low = quality["low_completeness"]
    if low:
        text = lang.ngettext(
            "%(n)s measuring channel delivered less than %(pct)s of the expected data: %(channels)s.",
            "%(n)s measuring channels delivered less than %(pct)s of the expected data: %(channels)s.",
            len(low),
        ) % {"n": lang.int(len(low)), "pct": lang.pct(LOW_COMPLETENESS),
             "channels": _named(lang, [channel_text(lang, c) for c in low])}  # fmt: skip
        items.append(_item("low_completeness", text, channels=list(low)))
    return items


def decisions(
    lang: Lang, hazards: Sequence[Mapping[str, Any]], alerts: Mapping[str, Any], quality: Mapping[str, Any],
    *, has_data: bool, not_judged: Mapping[str, Sequence[str]] | None = None,
) -> list[Item]:  # fmt: skip
    """The decision items of a site; "no data" when the month has no shift records and no alerts."""
    items = []
    if not has_data:
        text = lang.gettext(
            "No data: this month has no shift records and no alerts for this site. The report cannot say "
            "whether anything needs a decision; check that the monitors and the gateway were running."
        )
        items.append(_item("no_data", text))
    items += _not_judged(lang, unjudged(hazards, {}) if not_judged is None else not_judged)
    items += [i for hz in hazards for i in _seg_decisions(lang, hz)]
    items += _quality_decisions(lang, alerts, quality)
    if not items:
        items.append(_item("none", lang.gettext("Nothing this month needs a decision by the committee.")))
    return items
