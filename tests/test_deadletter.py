"""Dead letters and the text that reaches logs: size caps, control characters, log throttle."""

from __future__ import annotations

import logging

import orjson
import pytest

from gateway.deadletter import DeadLetter, DeadLetterLog
from gateway.mqtt import InboundMessage
from rules.text import escape_log_messages, printable, shorten, shown

NOW = 1_795_340_000.0


def future(i: int) -> DeadLetter:
    """What a sensor with a wrong clock produces: the same reason, a different number each time."""
    return DeadLetter("osh/kop-1/z/gd-clock/data", f"time stamp {3600 + i} s in the future (more than 300 s)", b"{}", 0)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_identical_dead_letters_are_logged_once_per_minute_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13 point 8: 14,040 identical warnings in a minute from one sensor."""
    dl = DeadLetterLog(logging.getLogger("t.dead"))
    with caplog.at_level(logging.WARNING, "t.dead"):
        for i in range(14_040):
            dl.record(future(i), NOW + i * 60 / 14_040)
            if i % 234 == 0:
                dl.flush(NOW + i * 60 / 14_040)  # the gateway's 1-s tick
        assert len(caplog.records) == 1 and "3600 s in the future" in lines(caplog)[0]
        dl.flush(NOW + 60.0)
    assert len(caplog.records) == 2
    assert "repeated 14039 more times in 60 s" in lines(caplog)[1]


def test_throttle_is_per_topic_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    dl = DeadLetterLog(logging.getLogger("t.dead"))
    with caplog.at_level(logging.WARNING, "t.dead"):
        dl.record(future(0), NOW)
        dl.record(DeadLetter("osh/kop-1/z/gd-other/data", future(0).error, b"", 0), NOW)
        dl.record(DeadLetter(future(0).topic, "payload is not valid UTF-8 JSON", b"", 0), NOW)
        dl.record(future(1), NOW + 1)
    assert len(caplog.records) == 3


def test_a_new_window_logs_again(caplog: pytest.LogCaptureFixture) -> None:
    dl = DeadLetterLog(logging.getLogger("t.dead"))
    with caplog.at_level(logging.WARNING, "t.dead"):
        dl.record(future(0), NOW)
        dl.record(future(1), NOW + 10)
        dl.record(future(2), NOW + 61)  # no tick in between: the record closes the old window itself
    assert [("repeated" in m) for m in lines(caplog)] == [False, True, False]


def test_tracked_keys_are_bounded_and_the_rest_counted(caplog: pytest.LogCaptureFixture) -> None:
    dl = DeadLetterLog(logging.getLogger("t.dead"), max_keys=10)
    with caplog.at_level(logging.WARNING, "t.dead"):
        for i in range(1000):
            dl.record(DeadLetter(f"osh/kop-1/z/d{i}/data", "bad", b"", 0), NOW)
        assert len(caplog.records) == 10
        dl.flush(NOW + 1)
    assert "990 more dead letters" in lines(caplog)[-1]


def test_huge_topic_and_error_are_cut_in_the_dead_letter() -> None:
    """Issue 15 point 8: a 60 KB topic gave a 180 KB dead letter."""
    topic = "osh/kop-1/z/" + "L" * 60_000 + "/data"
    wire = DeadLetter(topic, f"topic {topic!r} is bad", b"x" * 5000, NOW).to_wire()
    assert len(wire) < 3500
    d = orjson.loads(wire)
    assert d["topic"].endswith(f"…[{len(topic)} chars]") and d["payload_bytes"] == 5000


def test_oversized_message_keeps_its_real_size() -> None:
    from gateway.batching import DecodeLimits, sort_messages
    from rules.types import ChannelRegistry

    m = InboundMessage("osh/kop-1/z/d/data", b'{"t": 1, "hazard"', 1, False, 1, 1, NOW, oversize_bytes=100 * 2**20)
    (dead,) = sort_messages([m], ChannelRegistry(), DecodeLimits("osh", 1e6, 300), NOW).dead
    assert "104857600 bytes" in dead.error and "256 KiB" in dead.error
    assert orjson.loads(dead.to_wire())["payload_bytes"] == 100 * 2**20


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("gd-17", "gd-17"),
        ("a\nb", "a\\nb"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("nul\x00", "nul\\x00"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),
        ("Petrović — šef", "Petrović — šef"),
    ],
)
def test_printable_escapes_every_control_character(raw: str, safe: str) -> None:
    assert printable(raw) == safe


def test_shorten_says_how_long_the_original_was() -> None:
    assert shorten("x" * 10, 4) == "xxxx…[10 chars]"
    assert shorten("xy", 4) == "xy"
    assert shown("\n" * 300) == "\\n" * 256 + "…[300 chars]"


def test_log_records_escape_the_message_but_keep_tracebacks() -> None:
    logger = logging.getLogger("t.escape")
    handler = logging.StreamHandler()
    records: list[str] = []
    handler.emit = lambda r: records.append(handler.format(r))  # type: ignore[method-assign]
    logger.addHandler(handler)
    old = logging.getLogRecordFactory()
    escape_log_messages()
    try:
        logger.warning("ack by %s", "Ana\n2026-11-30 INFO forged\x1b[2J")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed for %s", "x\ry")
    finally:
        logging.setLogRecordFactory(old)
        logger.removeHandler(handler)
    assert records[0] == "ack by Ana\\n2026-11-30 INFO forged\\x1b[2J"
    assert records[1].startswith("failed for x\\ry\nTraceback")


def test_a_decoder_bug_costs_one_message_not_the_batch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway import batching
    from gateway.batching import DecodeLimits, sort_messages
    from rules.types import ChannelRegistry

    real = batching.decode_readings

    def flaky(topic, payload, *a, **kw):  # type: ignore[no-untyped-def]
        if b"boom" in payload:
            raise TypeError("unexpected")
        return real(topic, payload, *a, **kw)

    monkeypatch.setattr(batching, "decode_readings", flaky)
    good = b'{"t": 1795339990, "hazard": "co", "value": 3, "unit": "ppm"}'
    payloads = [good, b'{"boom": 1}', good]
    msgs = [InboundMessage("osh/k/z/d/data", p, 1, False, i, 1, NOW) for i, p in enumerate(payloads)]
    with caplog.at_level(logging.ERROR):
        out = sort_messages(msgs, ChannelRegistry(), DecodeLimits("osh", 1e6, 300), NOW)
    assert len(out.readings) == 2
    (dead,) = out.dead
    assert "could not decode this message (TypeError)" in dead.error
    assert "could not decode a message from osh/k/z/d/data" in caplog.text
