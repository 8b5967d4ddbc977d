"""The embedded store: one SQLite file in WAL mode (schema in `storage.sqlite_schema`).

Durability: `journal_mode=WAL` with `synchronous=FULL`, so every committed write batch is
fsync'd to the WAL before the call returns. With `NORMAL`, a power cut can roll back the last
commits, and the gateway has already acknowledged those readings to the broker (SPEC §6); one
fsync per batch of thousands of rows costs little (docs/benchmarks.md).

Threads: one writer connection guarded by a lock (SQLite has one writer at a time anyway); each
`query()` opens its own read connection, so the CLI or reports can read while the gateway's
worker thread writes (WAL readers never block the writer, nor the writer them).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from alerts.types import AlertEvent
from rules.errors import StoreError
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch
from storage import records as rec
from storage import sqlite_schema as sch
from storage.base import HistoryQuery, PartialWriteError, RecordKind, Rejected

#: How long a writer waits for another process's write transaction before giving up (ms).
BUSY_TIMEOUT_MS = 30_000
#: Expired rows are deleted at most this often, from the write path.
PRUNE_EVERY_S = 3600.0
#: Rows fetched per round trip while streaming a query.
FETCH_ROWS = 2000


class SqliteStore:
    """`storage.base.Store` on a SQLite file; safe to share between threads."""

    def __init__(
        self,
        path: Path,
        *,
        retention: rec.Retention | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.retention = retention or rec.Retention()
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[ChannelKey, int] = {}
        self._next_prune = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            if self._db.execute("PRAGMA user_version").fetchone()[0] != sch.SCHEMA_VERSION:
                with self._lock:  # only a new file needs the write lock, so readers never wait
                    self._migrate()
                    self._db.executescript(sch.SCHEMA)
                    self._db.execute(f"PRAGMA user_version = {sch.SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open SQLite store {self.path}: {e}", retryable=False) from e

    def _migrate(self) -> None:
        """Bring a store written by an older oshmon up to the current schema, in place."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        has_alert = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'alert'").fetchone()[0]
        if not (has_alert and 0 < version < sch.SCHEMA_VERSION):
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            while version < sch.SCHEMA_VERSION:
                for stmt in sch.MIGRATIONS[version]:
                    table = sch.added_to(stmt)
                    if table == "" or (table in tables and stmt.split()[5] not in self._columns(table)):
                        self._db.execute(stmt)
                version += 1
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in self._db.execute(f"PRAGMA table_info({table})")}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return db

    def ping(self) -> None:
        """Raise `StoreError` unless the file is still there and writable."""
        if not self.path.exists() or not os.access(self.path, os.W_OK):
            raise StoreError(f"SQLite store {self.path} missing or not writable")
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: {e}") from None

    # -- writes -------------------------------------------------------------------------------

    def write_readings(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> None:
        """Upsert a batch; refused rows (NaN, unstorable tags) raise `PartialWriteError` after."""
        if len(batch) == 0:
            return
        ok, rejected = rec.screen_readings(keys, batch)
        channel, t_s, value = batch.channel[ok], batch.t_s[ok], batch.value[ok]
        with self._writing() as db:
            uniq, inverse = rec.channels_used(channel, len(keys))
            ids = np.array([self._series_id(db, keys[c]) for c in uniq.tolist()], np.int64)
            t_ms = np.rint(t_s * 1000.0).astype(np.int64)
            rows = zip(ids[inverse].tolist(), t_ms.tolist(), value.tolist(), strict=True)
            db.executemany(sch.UPSERT_READING, rows)
        if rejected:
            raise PartialWriteError(rejected, accepted=int(ok.sum()))

    def _series_id(self, db: sqlite3.Connection, key: ChannelKey) -> int:
        found = self._series.get(key)
        if found is None:
            tags = (key.site, key.zone, key.device, str(key.hazard), key.worker or "")
            db.execute(
                "INSERT INTO series (site, zone, device, hazard, worker) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                tags,
            )
            where = "site = ? AND zone = ? AND device = ? AND hazard = ? AND worker = ?"
            found = int(db.execute(f"SELECT id FROM series WHERE {where}", tags).fetchone()[0])
            self._series[key] = found
        return found

    def write_exposures(self, records: Sequence[ExposureRecord]) -> None:
        rows, rejected = [], []
        for r in records:
            if problem := rec.channel_problem(r.key):
                rejected.append(Rejected(repr(r), problem))
                continue
            fields = rec.exposure_fields(r)
            limits = {rec.limit_field(k): float(v) for k, v in r.limits.items()}
            tags = (r.key.site, r.key.zone, r.key.device, str(r.key.hazard), r.key.worker or "")
            row = (*tags, r.shift, rec.to_ms(r.shift_start_s))
            rows.append((*row, *(fields[f] for f in sch.EXPOSURE_COLUMNS[7:-1]), orjson.dumps(limits)))
        with self._writing() as db:
            db.executemany(sch.UPSERT_EXPOSURE, rows)
        if rejected:
            raise PartialWriteError(rejected, accepted=len(rows))

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        rows, rejected = [], []
        for e in events:
            problem = next(
                (p for n in ("site", "zone", "device", "worker", "audit_chain") if (p := _tag_problem(n, e))), None
            )
            if problem:
                rejected.append(Rejected(orjson.dumps(e.to_wire()).decode(), problem))
                continue
            fields = rec.alert_fields(e)
            tags = (e.site, e.zone, e.device, e.hazard, e.worker or "", str(e.rule), str(e.severity))
            row = (*tags, str(e.event), rec.to_ms(e.t_s), rec.audit_key(e.audit_chain, e.audit_seq))
            rows.append((*row, *(fields[f] for f in sch.ALERT_COLUMNS[len(row) :])))
        with self._writing() as db:
            db.executemany(sch.UPSERT_ALERT, rows)
        if rejected:
            raise PartialWriteError(rejected, accepted=len(rows))

    def _writing(self, *, prune_after: bool = True) -> _Transaction:
        return _Transaction(self, prune_after)

    # -- retention ----------------------------------------------------------------------------

    def prune(self) -> int:
        """Delete rows older than the retention of their kind; returns how many went."""
        now_ms = rec.to_ms(self._clock())
        deleted = 0
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        with self._writing(prune_after=False) as db:
            for kind, table in _TABLES.items():
                if days := self.retention.days(kind):
                    cutoff = now_ms - days * 86_400_000
                    deleted += db.execute(f"DELETE FROM {table} WHERE t_ms < ?", (cutoff,)).rowcount
        return deleted

    # -- reads --------------------------------------------------------------------------------

    def count(self, q: HistoryQuery) -> int:
        """How many rows `query(q)` would return, counted in SQLite (no rows are built)."""
        sql, params = _select(replace(q, limit=None))
        sql = sql[: sql.index(" ORDER BY ")]
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            db.execute("PRAGMA query_only = 1")
            n = int(db.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0])
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: count failed: {e}") from e
        finally:
            db.close()
        return n if q.limit is None else min(n, q.limit)

    def query(self, q: HistoryQuery) -> Iterator[dict[str, Any]]:
        """Rows of `COLUMNS[q.kind]`, in time order (ties by tag set), streamed."""
        sql, params = _select(q)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            db.execute("PRAGMA query_only = 1")
            cur = db.execute(sql, params)
            names = [d[0] for d in cur.description]
            while chunk := cur.fetchmany(FETCH_ROWS):
                for raw in chunk:
                    yield _row(q.kind, dict(zip(names, raw, strict=True)))
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: query failed: {e}") from e
        finally:
            db.close()

    def sites(self) -> list[str]:
        sql = "SELECT site FROM series UNION SELECT site FROM exposure UNION SELECT site FROM alert ORDER BY site"
        with self._lock:
            try:
                return [str(r[0]) for r in self._db.execute(sql)]
            except sqlite3.Error as e:
                raise StoreError(f"SQLite store {self.path}: cannot list sites: {e}") from e

    def latest_readings(self, t_from_s: float, site: str | None = None) -> list[dict[str, Any]]:
        """The last reading of every channel at or after `t_from_s` (one index seek per series)."""
        sql = (
            "SELECT r.t_ms AS t_ms, s.site, s.zone, s.device, s.hazard, s.worker, r.value FROM series s "
            "JOIN reading r ON r.series = s.id AND r.t_ms = (SELECT max(t_ms) FROM reading WHERE series = s.id) "
            "WHERE r.t_ms >= ?" + (" AND s.site = ?" if site is not None else "")
        )
        params: list[Any] = [rec.ms_bound(t_from_s), *([site] if site is not None else [])]
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            db.execute("PRAGMA query_only = 1")
            cur = db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [_row(RecordKind.READINGS, dict(zip(names, raw, strict=True))) for raw in cur.fetchall()]
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: query failed: {e}") from e
        finally:
            db.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """`with store._writing() as db:` — lock, one transaction, errors as `StoreError`."""

    def __init__(self, store: SqliteStore, prune_after: bool) -> None:
        self.store = store
        self.prune_after = prune_after

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self.store._lock.release()
            raise StoreError(f"SQLite store {self.store.path}: cannot start a write: {e}") from e
        return self.store._db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self.store
        try:
            if exc_type is None:
                store._db.execute("COMMIT")
            else:
                store._db.execute("ROLLBACK")
                store._series.clear()  # ids made in the rolled-back transaction are gone
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {store.path}: commit failed: {e}") from e
        finally:
            store._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"SQLite store {store.path}: write failed: {exc}") from exc
        if self.prune_after and exc_type is None and time.monotonic() >= store._next_prune:
            store.prune()


_TABLES = {RecordKind.READINGS: "reading", RecordKind.EXPOSURES: "exposure", RecordKind.ALERTS: "alert"}


def _tag_problem(name: str, event: AlertEvent) -> str | None:
    value = getattr(event, name)
    return None if value is None else rec.tag_problem(name, value)


def _select(q: HistoryQuery) -> tuple[str, list[Any]]:
    """SQL and parameters for a history query (filters that do not apply to the kind are ignored)."""
    tags = rec.TAGS[q.kind]
    if q.kind is RecordKind.READINGS:
        source = "reading r JOIN series s ON s.id = r.series"
        cols = "r.t_ms AS t_ms, s.site, s.zone, s.device, s.hazard, s.worker, r.value"
        prefix = "s."
    else:
        source, cols, prefix = _TABLES[q.kind], "*", ""
    where, params = [], []
    for name in ("site", "zone", "device", "worker", "hazard", "rule", "severity"):
        value = getattr(q, name)
        if value is not None and name in tags:
            where.append(f"{prefix}{name} = ?")
            params.append(value)
    time_col = "r.t_ms" if prefix else "t_ms"
    if q.t_from_s is not None:
        where.append(f"{time_col} >= ?")
        params.append(rec.ms_bound(q.t_from_s))
    if q.t_to_s is not None:
        where.append(f"{time_col} < ?")
        params.append(rec.ms_bound(q.t_to_s))
    sql = f"SELECT {cols} FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    desc = " DESC" if q.newest_first else ""
    order = [prefix + t + desc for t in tags] + ([f"audit_key{desc}"] if q.kind is RecordKind.ALERTS else [])
    sql += f" ORDER BY {time_col}{desc}, " + ", ".join(order)
    if q.limit is not None:
        sql += " LIMIT ?"
        params.append(q.limit)
    return sql, params


def _row(kind: RecordKind, raw: dict[str, Any]) -> dict[str, Any]:
    t_ms = int(raw["t_ms"])
    if kind is RecordKind.READINGS:
        return rec.reading_row(t_ms, raw, raw["value"])
    if kind is RecordKind.EXPOSURES:
        return rec.exposure_row(t_ms, raw, orjson.loads(raw["limits"]))
    return rec.alert_row(t_ms, raw)
