"""The alert book at start-up (rebuilt from the store's alert log) and its checkpoint file.

The store's alert log is the truth; `<state dir>/alerts.json` is only a cache of the timers the
log does not hold exactly (clear holds, cleared alerts kept for late acks and flapping, fault
spans). The checkpoint names the store it belongs to and is ignored, with a warning, when the
gateway starts against another store (docs/durability.md).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from alerts.errors import SnapshotError
from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from alerts.rebuild import OpenScan, Row
from rules.results import Limit
from storage.base import HistoryQuery, RecordKind, Store

log = logging.getLogger(__name__)

ALERT_CHECKPOINT = "alerts.json"
#: The checkpoint is written at most this often (issue 15: a 17 MB book rewritten every tick).
CHECKPOINT_MIN_INTERVAL_S = 1.0
#: ... and never more than this share of the time: a write that took 0.2 s waits 4 s.
CHECKPOINT_MAX_DUTY = 0.05


class Checkpoint:
    """`alerts.json`, bound to its store, written atomically (fsync + rename, mode 0600) at most
    once every `min_interval_s` (longer when a write is slow). With `background=True` the file
    is written by a worker thread, one write at a time, so the gateway's loop only pays for the
    snapshot; `save(force=True)` (shutdown) waits for it and writes in the caller."""

    def __init__(
        self,
        path: Path,
        store_id: str,
        *,
        min_interval_s: float = CHECKPOINT_MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.store_id = store_id
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.writes = 0
        self.loaded: dict[str, Any] | None = None  # what `read()` returned
        self._next_s = float("-inf")
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def read(self) -> dict[str, Any] | None:
        """The saved snapshot if it belongs to this store; None (with a log line) otherwise."""
        self.loaded = self._read()
        return self.loaded

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("alert checkpoint %s unreadable (%s): ignored", self.path, exc)
            return None
        owner = data.get("store") if isinstance(data, dict) else None
        if owner != self.store_id:
            log.warning(
                "alert checkpoint %s belongs to another store (%s), not to %s: ignored; "
                "open alerts are rebuilt from this store's alert log",
                self.path, owner or "a store it does not name", self.store_id,
            )  # fmt: skip
            return None
        assert isinstance(data, dict)
        return data

    def save(self, snapshot: Callable[[], dict[str, Any]], *, force: bool = False, background: bool = False) -> bool:
        """Write the snapshot unless the last write was too recent or is still running; True if
        a write was made (or handed to the worker)."""
        start = self.clock()
        if not force and (start < self._next_s or not self._settled()):
            return False
        self.wait()  # force: the write in flight finishes first (order kept)
        raw = orjson.dumps({**snapshot(), "store": self.store_id})
        self.writes += 1
        if background:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="alert-checkpoint")
            self._pending = self._pool.submit(self._write, raw, start)
        else:
            self._write(raw, start)
        return True

    def wait(self) -> None:
        """Until the write in flight (if any) has finished."""
        if self._pending is not None:
            self._pending.exception()
            self._settled()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._settled()
            self._pool = None

    def _settled(self) -> bool:
        """No write in flight; a failed background write is logged (the checkpoint is a cache)."""
        done = self._pending
        if done is None:
            return True
        if not done.done():
            return False
        self._pending = None
        if done.exception() is not None:
            log.error("alert checkpoint %s not written: %s", self.path, done.exception())
        return True

    def _write(self, raw: bytes, start: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        took = self.clock() - start
        self._next_s = start + max(self.min_interval_s, took / CHECKPOINT_MAX_DUTY)


def load_alerts(
    checkpoint: Checkpoint,
    store: Store,
    limits: Sequence[Limit],
    policy: AlertPolicy,
    accept: Callable[[Row], bool],
    also: Callable[[Row], None] | None = None,
) -> AlertBook:
    """The alert book of a starting gateway: the checkpoint (if it is this store's) as a cache,
    made to agree with the store's alert log (`AlertBook.adopt_log`: the store log wins).

    Alert events still in the spool are replayed into the store first; if some cannot be (the
    store is down), the checkpoint's open alerts missing from the log are kept. The log is read
    once; `also` sees every stored event too (e.g. to find the audit chain's head)."""
    log_complete = _replay_spool(store)
    data = checkpoint.read()
    book = AlertBook(policy)
    if data is not None:
        try:
            book = AlertBook.restore(data, policy)
        except SnapshotError as exc:
            log.error("alert checkpoint %s: %s; open alerts come from the store's alert log", checkpoint.path, exc)
    scan = OpenScan()
    for row in store.query(HistoryQuery(RecordKind.ALERTS)):
        if also is not None:
            also(row)
        if accept(row):
            scan.add(row)
    states = scan.states(limits, policy)
    level = logging.WARNING if data is not None else logging.INFO  # no cache: nothing disagrees
    for note in book.adopt_log(states, log_complete=log_complete):
        log.log(level, "%s", note)
    if states:
        log.info("%d open alert(s) taken over from the store's alert log", len(states))
    return book


def _replay_spool(store: Store) -> bool:
    """Replay what waits in the spool (SpooledStore); True when nothing is left behind."""
    depth = getattr(store, "spool_depth", None)
    if depth is None or depth() == 0:
        return True
    store.replay()  # type: ignore[attr-defined]
    left = int(depth())
    if left:
        log.warning("%d spooled batch(es) could not reach the store yet: its alert log may be behind", left)
    return left == 0
