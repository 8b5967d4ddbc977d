"""Every string the board shows, in English; translated through `oshmon_board.po` (en/sr/ru),
the same gettext machinery and locale folder as the reports (reports/i18n.py)."""

from __future__ import annotations

from reports.i18n import CLDR_LOCALE, translations

DOMAIN = "oshmon_board"

#: key (used by board.js and the templates) → English text (the msgid).
UI: dict[str, str] = {
    "title": "Control room",
    "active_alarms": "Active alarms",
    "no_alarms": "No active alarms",
    "acknowledge": "Acknowledge",
    "acknowledged_by": "Acknowledged by",
    "escalated": "Escalated: not acknowledged in time",
    "open_for": "open for",
    "since": "since",
    "action": "What to do",
    "source": "Legal source",
    "value": "Value",
    "limit": "Limit",
    "note_prompt": "Note: cause found / action taken",
    "send": "Send acknowledgement",
    "cancel": "Cancel",
    "ack_sent": "Acknowledgement sent",
    "ack_failed": "Acknowledgement failed",
    "sign_in": "Sign in",
    "sign_out": "Sign out",
    "user_name": "User name",
    "password": "Password",
    "signed_in_as": "Signed in as",
    "viewer_note": "Viewers cannot acknowledge alarms",
    "wrong_login": "Wrong user name or password",
    "too_many": "Too many failed sign-ins. Try again later.",
    "zones": "Zones and devices",
    "monitors": "Personal monitors: this shift so far",
    "events": "Last 24 hours",
    "no_events": "No alert events in the last 24 hours",
    "broker_lost": "Connection to the MQTT broker lost since",
    "broker_lost_tail": "the alarms shown may be out of date",
    "store_error": "Store unavailable: latest values and shift exposures are not shown",
    "sound": "Alarm sound",
    "sound_on": "on",
    "sound_off": "off",
    "not_judged": "not judged: no limit in profile",
    "averaged": "judged on averages",
    "no_recent": "no recent reading",
    "ok": "within limits",
    "online": "online",
    "offline": "offline",
    "unknown": "no status",
    "device": "Device",
    "worker": "Worker",
    "hazard": "Hazard",
    "twa_so_far": "TWA so far",
    "projected": "projected to shift end",
    "lex_so_far": "LEX,8h so far",
    "shift": "Shift",
    "unverified": "Unverified: not signed by the gateway",
    "profile": "Limit profile",
    "ago": "ago",
    "site": "Site",
    "zone": "Zone",
    "time": "Time",
    "event": "Event",
    "health": "Health",
    "sev_critical": "critical",
    "sev_alarm": "alarm",
    "sev_warning": "warning",
    "sev_malfunction": "malfunction",
    "ev_raised": "raised",
    "ev_escalated": "escalated",
    "ev_acknowledged": "acknowledged",
    "ev_cleared": "cleared",
    "rule_level": "instant level",
    "rule_stel": "15-minute average",
    "rule_twa": "shift average",
    "rule_twa_projected": "shift average (projected)",
    "rule_lex8h": "noise exposure LEX,8h",
    "rule_dose": "noise dose",
    "rule_mixture": "gas mixture",
    "rule_offline": "offline",
    "rule_out_of_range": "out of range",
    "rule_stuck": "stuck value",
    "rule_calibration_due": "calibration due",
    "rule_gap": "missing readings",
    "rule_not_judged": "not judged",
    "role_officer": "officer",
    "role_viewer": "viewer",
    "board_lost": "Connection to the board lost; reconnecting",
}


def ui_strings(lang: str) -> dict[str, str]:
    tr = translations(lang, DOMAIN)
    return {key: tr.gettext(text) for key, text in UI.items()}


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """`?lang=` first, then the cookie, then the browser's Accept-Language; English otherwise."""
    for choice in (query, cookie):
        if choice in CLDR_LOCALE:
            return str(choice)
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in CLDR_LOCALE:
            return code
    return "en"
