"""OwnTopics (gateway/watch.py) on injected messages: echoes, foreign writes, restarts, no loops."""

from __future__ import annotations

import orjson

from alerts.lifecycle import AlertBook
from alerts.state import AlertSubject
from gateway.mqtt import InboundMessage
from gateway.watch import INTEGRITY_CLEAR_S, OwnTopics
from rules.types import RuleKind

T0 = 1_800_000_000.0
SUBJECT = AlertSubject("kop-1", "z1", "d3", "device")
TOPIC = "osh/kop-1/alarms/z1/d3/device/offline"


def msg(topic: str, payload: bytes, retain: bool = False) -> InboundMessage:
    return InboundMessage(topic, payload, 1, retain, 1, 1, T0)


def open_alert(book: AlertBook, watch: OwnTopics) -> bytes:
    [ev] = book.raise_health(SUBJECT, RuleKind.OFFLINE, t_s=T0, now_s=T0, message="offline")
    state = book.retained_state(ev)
    assert state is not None
    watch.published_state(TOPIC, state)
    return state


def test_echoes_pass_and_a_foreign_clear_is_undone_once() -> None:
    book = AlertBook()
    watch = OwnTopics("osh", "gw-1", book)
    state = open_alert(book, watch)
    assert watch.check([msg(TOPIC, state)], T0).republish == []  # our own echo
    found = watch.check([msg(TOPIC, b"")], T0 + 1)  # someone hides the alarm
    assert found.republish == [(TOPIC, state)]
    [incident] = found.events
    assert (incident.rule, incident.device, incident.hazard) == (RuleKind.INTEGRITY, "alarms", "gateway")
    assert TOPIC in incident.message
    assert watch.check([msg(TOPIC, state)], T0 + 2).republish == []  # the echo of the re-publication
    again = watch.check([msg(TOPIC, b"x")], T0 + 3)
    assert again.republish == [(TOPIC, state)] and again.events == []  # one open alert; its value counts
    [cleared] = watch.check([], T0 + 3 + INTEGRITY_CLEAR_S).events
    assert cleared.event == "cleared"


def test_after_a_restart_its_own_older_copy_is_refreshed_quietly_and_a_forged_one_reported() -> None:
    book = AlertBook()
    state = open_alert(book, OwnTopics("osh", "gw-1", book))
    fresh = OwnTopics("osh", "gw-1", book)  # a new process: no memory of what it published
    older = orjson.dumps({**orjson.loads(state), "value": 1.0})  # same alert id, older figures
    refreshed = fresh.check([msg(TOPIC, older, retain=True)], T0)
    assert refreshed.republish == [(TOPIC, state)] and refreshed.events == []
    assert fresh.check([msg(TOPIC, state)], T0).republish == []  # the echo of the refresh
    ghost = "osh/kop-1/alarms/z1/d9/device/offline"
    forged = fresh.check([msg(ghost, orjson.dumps({"alert_id": "nope"}), retain=True)], T0)
    assert forged.republish == [(ghost, b"")] and len(forged.events) == 1


def test_unsigned_alert_events_are_dead_lettered() -> None:
    book = AlertBook()
    watch = OwnTopics("osh", "gw-1", book)
    found = watch.check([msg("osh/kop-1/alerts", b'{"alert_id": "x", "event": "raised"}')], T0)
    [dead] = found.dead
    assert "not published by this gateway (no audit_chain/audit_seq" in dead.error
    assert [e.device for e in found.events] == ["alerts"]
    assert watch.check([msg("osh/kop-1/alerts", b"{bad")], T0).dead[0].error.startswith("alert event not")


def test_only_the_gateways_output_topics_are_watched() -> None:
    watch = OwnTopics("osh", "gw-1", AlertBook())
    assert watch.is_own_topic("osh/kop-1/alerts") and watch.is_own_topic(TOPIC)
    assert not watch.is_own_topic("osh/kop-1/alarms/dev/data")  # a zone called "alarms"
    assert not watch.is_own_topic("osh/kop-1/alerts/d/status") and not watch.is_own_topic("osh/kop-1/ack")
