"""Acknowledgement rules of the alert book (issue 13 point 7, issue 15 point 1), pure unit tests;
the same rules on a real mosquitto + `oshmon run` are in tests/test_ack_integration.py."""

from __future__ import annotations

import pytest

from alerts.acks import ACK_BY_MAX, ACK_NOTE_MAX, clean_ack
from alerts.errors import DuplicateAckError, InvalidAckError
from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from alerts.types import AlertEventKind
from gateway.payloads import AckPayload, decode_ack
from rules.errors import PayloadError
from rules.types import ChannelRegistry, RuleKind, Severity
from tests.test_alerts_helpers import GD17, LIMITS, batch, counter_ids, make_registry

T0 = 1_800_000_000.0
LEVEL, A, C = RuleKind.LEVEL, Severity.ALARM, Severity.CRITICAL


@pytest.fixture
def book() -> AlertBook:
    return AlertBook(AlertPolicy(escalate_after_s={"alarm": 60.0}, remind_every_s=None), id_factory=counter_ids())


@pytest.fixture
def reg() -> ChannelRegistry:
    return make_registry()


def raise_alarm(book: AlertBook, reg: ChannelRegistry, now: float = T0, sev: Severity = A, v: float = 60.0) -> str:
    [ev] = book.on_conditions(batch(reg, [(GD17, LEVEL, sev, v, now)]), reg, LIMITS, now)
    return ev.alert_id


def test_ack_only_on_the_alerts_own_site(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg)
    for forged_site in ("kop-2", "nonexistent-site"):
        with pytest.raises(InvalidAckError, match="belongs to site 'kop-1'"):
            book.acknowledge(aid, "Chief Inspector Forged", None, T0 + 5, site=forged_site)
    assert book.open_alerts()[0].acknowledged_by is None
    ev = book.acknowledge(aid, "Ana", None, T0 + 5, site="kop-1")
    assert ev.event is AlertEventKind.ACKNOWLEDGED


def test_replayed_ack_gives_one_event(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg)
    book.acknowledge(aid, "Ana", "fan restarted", T0 + 5, site="kop-1")
    for i in range(2):
        with pytest.raises(DuplicateAckError, match="already acknowledged by Ana"):
            book.acknowledge(aid, "Ana", "fan restarted", T0 + 6 + i, site="kop-1")
    other = book.acknowledge(aid, "Ana", "fan restarted; cause found: blasting fumes", T0 + 9, site="kop-1")
    assert other.note == "fan restarted; cause found: blasting fumes"  # a new note is a new acknowledgement


def test_same_ack_id_is_a_replay_even_after_a_new_tier(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg)
    book.acknowledge(aid, "Ana", None, T0 + 5, ack_id="ack-1")
    raise_alarm(book, reg, T0 + 10, C, 250.0)  # severity rises: a fresh acknowledgement is needed
    with pytest.raises(DuplicateAckError, match="ack id 'ack-1'"):
        book.acknowledge(aid, "Ana", None, T0 + 11, ack_id="ack-1")
    ev = book.acknowledge(aid, "Ana", None, T0 + 12, ack_id="ack-2")  # the same officer, for the new tier
    assert ev.severity is C


def test_ack_is_stamped_with_the_officers_time_within_bounds(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg, now=T0)
    late = book.acknowledge(aid, "Ana", None, T0 + 300, at_s=T0 + 20)  # queued while the gateway was down
    assert late.t_s == T0 + 20 and "received it at" in late.message
    aid2 = raise_alarm(book, reg, now=T0 + 400, sev=C, v=250.0)
    assert aid2 == aid
    early = book.acknowledge(aid, "Bo", None, T0 + 401, at_s=T0 - 3600)  # before the raise: the raise time
    assert early.t_s == T0 + 400
    book.acknowledge(aid, "Cy", None, T0 + 402, at_s=T0 + 9999)  # in the future: now
    assert book.open_alerts()[0].acknowledged_at_s == T0 + 402


def test_no_escalation_after_a_queued_ack(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg, now=T0)
    book.acknowledge(aid, "Ana", None, T0 + 30, at_s=T0 + 10)
    assert book.tick(T0 + 120) == []


def test_by_and_note_are_cleaned_and_checked_in_one_place(book: AlertBook, reg: ChannelRegistry) -> None:
    aid = raise_alarm(book, reg)
    ev = book.acknowledge(aid, "Ana\x1b[2J\r\nINFO forged line", "ok\x00\u202e", T0 + 1)
    assert ev.by == "Ana [2J INFO forged line" and ev.note == "ok"
    assert clean_ack("x" * ACK_BY_MAX, "y" * ACK_NOTE_MAX) == ("x" * ACK_BY_MAX, "y" * ACK_NOTE_MAX)
    with pytest.raises(InvalidAckError, match=f"at most {ACK_BY_MAX}"):
        book.acknowledge(aid, "x" * (ACK_BY_MAX + 1), None, T0 + 2)
    with pytest.raises(InvalidAckError, match=f"at most {ACK_NOTE_MAX}"):
        book.acknowledge(aid, "Ana", "y" * (ACK_NOTE_MAX + 1), T0 + 2)
    # the payload check has no limits of its own: one limit, one place (issue 15)
    long_by = decode_ack(b'{"alert_id": "A0001", "by": "' + b"x" * 500 + b'"}')
    assert isinstance(long_by, AckPayload)


@pytest.mark.parametrize("t", ["true", '"yesterday"', '"2026-11-30"'])
def test_ack_time_must_be_a_time(t: str) -> None:
    with pytest.raises(PayloadError, match="ack: t"):
        decode_ack(b'{"alert_id": "A", "by": "Ana", "t": ' + t.encode() + b"}")
    assert decode_ack(b'{"alert_id": "A", "by": "Ana", "t": "2026-11-30T08:00:00Z"}').at_s() == 1796025600.0
