"""The on-disk spool, its record codec, and SpooledStore against a real influxd that goes away."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.types import AlertEvent, AlertEventKind
from rules.errors import StoreError
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch
from storage import spool_codec as codec
from storage.base import HistoryQuery, PartialWriteError, RecordKind
from storage.influx import InfluxConfig, InfluxStore
from storage.influx_http import RetryPolicy
from storage.spool import Spool
from storage.spooled import SpooledStore
from storage.sqlite import SqliteStore
from tests.services import Influxd, run_influxd
from tests.storage_data import KEYS, T0, alert, batch, exposure, grid

R = RecordKind.READINGS

# -- Spool ------------------------------------------------------------------------------------


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (item := spool.peek()) is not None:
        after, payload = item
        spool.consume(after, len(payload))
        out.append(payload)
    return out


def test_spool_is_fifo_and_survives_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(f"batch {i}".encode())
    after, first = spool.peek() or (None, b"")
    assert first == b"batch 0" and after is not None
    spool.consume(after, len(first))
    spool.close()
    again = Spool(tmp_path)
    assert again.depth() == 4
    again.append(b"batch 5")
    assert drain(again) == [f"batch {i}".encode() for i in range(1, 6)]
    assert again.depth() == 0 and again.pending_bytes() == 0
    assert list(tmp_path.glob("seg-*")) == []  # replayed segments are deleted
    again.append(b"later")
    assert drain(again) == [b"later"]


def test_segments_rotate_and_go_once_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    payloads = [bytes([i]) * 40 for i in range(10)]
    for p in payloads:
        spool.append(p)
    assert len(list(tmp_path.glob("seg-*.osp"))) == 5
    got = []
    for _ in range(5):
        after, p = spool.peek() or (None, b"")
        assert after is not None
        spool.consume(after, len(p))
        got.append(p)
    assert len(list(tmp_path.glob("seg-*.osp"))) == 3
    spool.close()
    assert drain(Spool(tmp_path, segment_bytes=100)) == payloads[5:]


def test_torn_tail_is_cut_and_appending_continues(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"whole")
    spool.close()
    (segment,) = tmp_path.glob("seg-*.osp")
    with segment.open("ab") as f:
        f.write(b"\x10\x00\x00\x00\x01\x02")  # a frame header and 2 of 16 bytes: crash mid-append
    again = Spool(tmp_path)
    assert again.depth() == 1
    again.append(b"after the crash")
    assert drain(again) == [b"whole", b"after the crash"]


def test_corrupt_old_segment_is_set_aside_and_reported(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=30)
    for p in (b"a" * 20, b"b" * 20, b"c" * 20):
        spool.append(p)
    spool.close()
    first = sorted(tmp_path.glob("seg-*.osp"))[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    again = Spool(tmp_path, segment_bytes=30)
    assert again.corrupt_segments == 1 and len(list(tmp_path.glob("*.corrupt"))) == 1
    assert drain(again) == [b"b" * 20, b"c" * 20]


# -- codec ------------------------------------------------------------------------------------


class Recorder:
    """A store that keeps what it is given (to check the codec, not the storage)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def write_readings(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> None:
        self.calls.append(("readings", [(keys[c], t, v) for c, t, v in zip(*_lists(batch), strict=True)]))

    def write_exposures(self, records: Sequence[ExposureRecord]) -> None:
        self.calls.append(("exposures", list(records)))

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        self.calls.append(("alerts", list(events)))

    def query(self, q: HistoryQuery) -> Iterator[dict[str, Any]]:
        return iter(())

    def close(self) -> None:
        pass


def _lists(b: ReadingBatch) -> tuple[list[int], list[float], list[float]]:
    return b.channel.tolist(), b.t_s.tolist(), b.value.tolist()


def test_codec_round_trips_every_kind() -> None:
    b = batch([2, 0, 2], [T0, T0 + 0.125, T0 + 1], [1.5, np.pi, -0.0])
    events = [alert(), alert(AlertEventKind.ACKNOWLEDGED, by="x", note="y", value=None)]
    records = [exposure(), exposure(KEYS[2], lex8h=85.0, dose_pct=100.0, stel15_max=None)]
    rec = Recorder()
    for payload in (codec.encode_readings(KEYS, b), codec.encode_exposures(records), codec.encode_alerts(events)):
        codec.write_to(rec, payload)
    assert rec.calls[0] == ("readings", [(KEYS[2], T0, 1.5), (KEYS[0], T0 + 0.125, np.pi), (KEYS[2], T0 + 1, -0.0)])
    assert rec.calls[1] == ("exposures", records)
    assert rec.calls[2] == ("alerts", events)
    assert dataclasses.asdict(rec.calls[2][1][1]) == dataclasses.asdict(events[1])


# -- SpooledStore -----------------------------------------------------------------------------


def test_healthy_store_is_written_directly(tmp_path: Path) -> None:
    store = SpooledStore(SqliteStore(tmp_path / "osh.db"), tmp_path / "spool")
    store.write_readings(KEYS, grid(3))
    assert store.spool_depth() == 0
    assert sum(1 for _ in store.query(HistoryQuery(R))) == 12
    health = store.health()
    assert health.spool_depth == 0 and health.store_error is None
    store.close()


def test_refused_records_are_raised_not_spooled(tmp_path: Path) -> None:
    store = SpooledStore(SqliteStore(tmp_path / "osh.db"), tmp_path / "spool")
    with pytest.raises(PartialWriteError):
        store.write_readings(KEYS, batch([0, 1], [T0, T0], [1.0, float("nan")]))
    assert store.spool_depth() == 0
    store.close()


def test_low_disk_is_reported_and_a_full_one_refuses_to_spool(tmp_path: Path) -> None:
    down = InfluxStore(InfluxConfig(url="http://127.0.0.1:9", retry=RetryPolicy(attempts=1)))
    store = SpooledStore(down, tmp_path / "spool", min_free_bytes=2**62, refuse_below_bytes=2**62)
    health = store.health()
    assert not health.ok and health.reason is not None and "low" in health.reason
    with pytest.raises(StoreError, match="almost full") as info:
        store.write_readings(KEYS, grid(1))
    assert info.value.retryable
    assert "almost full" in (store.health().reason or "")
    store.close()


@pytest.fixture(scope="module")
def own_influxd() -> Iterator[Influxd]:
    """A server of our own, since these tests stop and start it."""
    with run_influxd() as server:
        yield server


def _influx(server: Influxd, db: str) -> InfluxStore:
    return InfluxStore(InfluxConfig(url=server.url, db=db, timeout_s=2.0, retry=RetryPolicy(attempts=2)))


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


@pytest.mark.integration
def test_influxd_down_spools_then_replays_in_order(own_influxd: Influxd, tmp_path: Path) -> None:
    store = SpooledStore(_influx(own_influxd, "spool1"), tmp_path / "spool", replay_interval_s=0.1)
    store.write_readings(KEYS, grid(100))  # 400 stored directly
    own_influxd.stop()
    try:
        for i in range(1, 6):
            b = grid(100)
            store.write_readings(KEYS, batch(b.channel, b.t_s + i * 1000, b.value))
        store.write_readings(KEYS, batch([0], [T0 + 5000], [1.0]))
        store.write_readings(KEYS, batch([0], [T0 + 5000], [2.0]))  # later wins after replay
        store.write_alert_events([alert()])
        assert store.spool_depth() == 8
        assert store.health().store_error is not None
    finally:
        own_influxd.start()
    _wait_for(lambda: store.spool_depth() == 0)
    rows = list(store.query(HistoryQuery(R)))
    assert len(rows) == 400 * 6
    overwritten = HistoryQuery(R, hazard="co", t_from_s=T0 + 5000, t_to_s=T0 + 5000.5)
    assert [r["value"] for r in store.query(overwritten)] == [2.0]  # 0.25, then 1.0, then 2.0
    assert len(list(store.query(HistoryQuery(RecordKind.ALERTS)))) == 1
    assert store.health().store_error is None
    store.close()


@pytest.mark.integration
def test_spool_outlives_the_process_and_replays_on_next_start(own_influxd: Influxd, tmp_path: Path) -> None:
    own_influxd.stop()
    try:
        first = SpooledStore(_influx(own_influxd, "spool2"), tmp_path / "spool", replay_interval_s=60)
        first.write_readings(KEYS, grid(50))
        first.write_exposures([exposure()])
        first.close()  # the gateway stops (or dies) with the store still down
    finally:
        own_influxd.start()
    second = SpooledStore(_influx(own_influxd, "spool2"), tmp_path / "spool", replay_interval_s=0.1)
    _wait_for(lambda: second.spool_depth() == 0)
    assert sum(1 for _ in second.query(HistoryQuery(R))) == 200
    assert len(list(second.query(HistoryQuery(RecordKind.EXPOSURES)))) == 1
    second.close()
