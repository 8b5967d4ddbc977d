"""`SpooledStore`: a store whose writes return once the data is durable in the store OR the spool.

Policy: while the spool is empty, a write goes straight to the inner store. If that fails for
any reason but refused records (`PartialWriteError`: those are reported, the rest is stored),
the batch is appended to the on-disk spool (fsync'd) and the call returns normally. From then
on every write is appended behind it, so order is kept, until a background thread has replayed
the spool into the store, oldest first, retrying with capped jittered backoff. Records the store
refuses during replay go to `on_rejected` (the gateway dead-letters them).

Disk health: `health()` reports free space, spool depth and the last store error; `ok` turns
False when free space falls below `min_free_bytes` or `min_free_fraction` (long before the disk
is full) or a spool write failed, and the gateway raises a `malfunction` alert. Below
`refuse_below_bytes` the spool refuses new batches (a retryable `StoreError`: the gateway then
does not acknowledge them, and the broker keeps them) rather than filling the disk.
"""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.types import AlertEvent
from rules.errors import StoreError
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch
from storage import spool_codec as codec
from storage.base import HistoryQuery, PartialWriteError, Store
from storage.influx_http import RetryPolicy
from storage.spool import Spool

log = logging.getLogger(__name__)

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class SpoolHealth:
    """What the gateway turns into a `malfunction` alert when `ok` is False."""

    ok: bool
    reason: str | None  # in words, for the alert message
    free_bytes: int
    total_bytes: int
    spool_depth: int  # batches waiting for the store
    spool_bytes: int
    store_error: str | None  # the store's last error while the spool is in use


class SpooledStore:
    """Wraps any `Store`; thread-safe; `close()` stops the replay thread and closes the inner store."""

    def __init__(
        self,
        inner: Store,
        spool_dir: Path,
        *,
        min_free_bytes: int = GIB,
        min_free_fraction: float = 0.05,
        refuse_below_bytes: int = 64 * 1024**2,
        retry: RetryPolicy | None = None,
        on_rejected: Callable[[PartialWriteError], None] | None = None,
        replay_interval_s: float = 0.5,
    ) -> None:
        self.inner = inner
        self.spool = Spool(spool_dir)
        self.min_free_bytes, self.min_free_fraction = min_free_bytes, min_free_fraction
        self.refuse_below_bytes = refuse_below_bytes
        self.retry = retry or RetryPolicy(attempts=0, base_s=0.5, cap_s=30.0)
        self.on_rejected = on_rejected or _log_rejected
        self._lock = threading.Lock()  # spool state and the direct-or-spool decision
        self._replaying = threading.Lock()
        self._failures = 0
        self._next_attempt = 0.0
        self._store_error: str | None = None
        self._disk_error: str | None = None
        self._rng = random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._replay_loop, args=(replay_interval_s,), name="spool-replay", daemon=True
        )
        self._thread.start()

    # -- writes -------------------------------------------------------------------------------

    def write_readings(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> None:
        if len(batch):
            self._write(lambda: self.inner.write_readings(keys, batch), lambda: codec.encode_readings(keys, batch))

    def write_exposures(self, records: Sequence[ExposureRecord]) -> None:
        if records:
            self._write(lambda: self.inner.write_exposures(records), lambda: codec.encode_exposures(records))

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        if events:
            self._write(lambda: self.inner.write_alert_events(events), lambda: codec.encode_alerts(events))

    def _write(self, direct: Callable[[], None], encode: Callable[[], bytes]) -> None:
        with self._lock:
            if self.spool.depth() == 0:
                try:
                    direct()
                    self._store_error = None
                    return
                except PartialWriteError:
                    raise
                except StoreError as e:
                    self._failed(e)
            self._append(encode())
        self._wake.set()

    def _append(self, payload: bytes) -> None:
        free = shutil.disk_usage(self.spool.dir).free
        if free - len(payload) < self.refuse_below_bytes:
            self._disk_error = f"spool disk {self.spool.dir} almost full ({free // 2**20} MiB free)"
            raise StoreError(f"cannot spool: {self._disk_error}", retryable=True)
        try:
            self.spool.append(payload)
        except OSError as e:
            self._disk_error = f"spool write to {self.spool.dir} failed: {e.strerror or e}"
            raise StoreError(f"cannot spool: {self._disk_error}", retryable=True) from e
        self._disk_error = None

    def _failed(self, error: StoreError) -> None:
        self._store_error = str(error)
        self._failures += 1
        self._next_attempt = time.monotonic() + self.retry.delay(min(self._failures, 30), self._rng)
        log.warning("store write failed, spooling (depth %d): %s", self.spool.depth(), error)

    # -- replay -------------------------------------------------------------------------------

    def replay(self, max_records: int | None = None) -> int:
        """Replay spooled batches into the store, oldest first; stops at the first failure."""
        done = 0
        with self._replaying:
            while max_records is None or done < max_records:
                with self._lock:
                    item = self.spool.peek()
                if item is None:
                    break
                after, payload = item
                try:
                    codec.write_to(self.inner, payload)
                except PartialWriteError as e:
                    self.on_rejected(e)
                except StoreError as e:
                    with self._lock:
                        self._failed(e)
                    break
                with self._lock:
                    self.spool.consume(after, len(payload))
                    self._failures, self._store_error = 0, None
                done += 1
        if done:
            log.info("replayed %d spooled batch(es); %d left", done, self.spool_depth())
        return done

    def _replay_loop(self, interval_s: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(interval_s)
            self._wake.clear()
            if self.spool_depth() and time.monotonic() >= self._next_attempt:
                try:
                    self.replay(max_records=64)
                except Exception:  # keep the thread alive; the spool keeps the data
                    log.exception("spool replay failed")
                    self._next_attempt = time.monotonic() + self.retry.cap_s

    # -- health, reads, lifecycle ---------------------------------------------------------------

    def spool_depth(self) -> int:
        with self._lock:
            return self.spool.depth()

    def health(self) -> SpoolHealth:
        usage = shutil.disk_usage(self.spool.dir)
        threshold = max(self.min_free_bytes, int(self.min_free_fraction * usage.total))
        reason = self._disk_error
        if reason is None and usage.free < threshold:
            reason = (
                f"spool disk {self.spool.dir} low: {usage.free // 2**20} MiB free, "
                f"below the {threshold // 2**20} MiB threshold"
            )
        if reason is None and self.spool.corrupt_segments:
            reason = f"spool {self.spool.dir}: {self.spool.corrupt_segments} corrupt segment(s) set aside"
        with self._lock:
            depth, size = self.spool.depth(), self.spool.pending_bytes()
        return SpoolHealth(reason is None, reason, usage.free, usage.total, depth, size, self._store_error)

    def ping(self) -> None:
        """The inner store's ping (`accepting()` says whether the spool would take the writes)."""
        inner_ping = getattr(self.inner, "ping", None)
        if inner_ping is not None:
            inner_ping()

    def latest_readings(self, t_from_s: float, site: str | None = None) -> list[dict[str, Any]]:
        return self.inner.latest_readings(t_from_s, site)

    def accepting(self) -> tuple[bool, str | None]:
        """Would a write be taken (by the store or, behind it, the spool) right now?"""
        if self._disk_error is not None:
            return False, self._disk_error
        free = shutil.disk_usage(self.spool.dir).free
        if free < self.refuse_below_bytes:
            return False, f"spool disk {self.spool.dir}: {free // 2**20} MiB free, refusing new batches"
        return True, None

    def query(self, q: HistoryQuery) -> Iterator[dict[str, Any]]:
        """The inner store's rows (batches still in the spool are not seen until replayed)."""
        return self.inner.query(q)

    def sites(self) -> list[str]:
        return self.inner.sites()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(60)
        with self._lock:
            self.spool.close()
        self.inner.close()


def _log_rejected(error: PartialWriteError) -> None:
    for r in error.rejected:
        log.error("store refused a replayed record (%s): %s", r.reason, r.record[:300])
