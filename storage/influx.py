"""InfluxDB store (SPEC §4): v1 API (InfluxDB 1.x) or v2 API (2.x/3.x), InfluxQL reads.

Writes: line protocol (`storage.lineproto`) in chunks of `batch_lines` (InfluxDB's recommended
5 000), `precision=ms`, over keep-alive connections; gzip when the server is not on this host.
A large reading batch is split by channel into `lanes` (default 2) posted concurrently: one lane
builds lines while the other's request is on the wire, and each series stays in one lane, so
its points arrive in order (a repeated point in a batch still ends with its last value).
Reads: InfluxQL `SELECT *` through `/query` (v1, or v2's v1-compatibility
endpoint), streamed in chunks, equal times put in tag order so that rows match `SqliteStore`.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx

from alerts.types import AlertEvent
from rules.errors import ConfigError, StoreError
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch
from storage import lineproto as lp
from storage import records as rec
from storage.base import HistoryQuery, PartialWriteError, RecordKind, Rejected
from storage.influx_http import DatabaseMissing, InfluxHttp, RetryPolicy
from storage.influx_setup import RP_NAMES, V2_RP, influxql, quote_ident, quote_string, setup_v1, setup_v2

log = logging.getLogger(__name__)

MEASUREMENT = {RecordKind.READINGS: "reading", RecordKind.EXPOSURES: "exposure", RecordKind.ALERTS: "alert"}
#: Rows per chunk of a streamed `/query` response.
QUERY_CHUNK_ROWS = 10_000


@dataclass(frozen=True, slots=True, repr=False)
class InfluxConfig:
    """Where and how to reach InfluxDB (`OSH_INFLUX_*`); secrets are kept out of `repr`."""

    url: str = "http://127.0.0.1:8086"
    api: str = "v1"  # "v1": InfluxDB 1.x; "v2": token/org/bucket (2.x, 3.x)
    db: str | None = None  # v1 database (default "osh"); v2: InfluxQL database of the DBRP mapping
    org: str | None = None
    bucket: str | None = None
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    batch_lines: int = 5000
    #: Concurrent write connections for large reading batches; rows are split by channel, so
    #: each series' points still arrive in order (docs/benchmarks.md: 2 keep the server busy).
    lanes: int = 2
    gzip: bool | None = None  # None: only when the server is not on a loopback address
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Create the database/retention policies (v1) or bucket/DBRP mapping (v2) when missing;
    #: False for a write-only token, or a server with only the write endpoints.
    manage_schema: bool = True

    def __post_init__(self) -> None:
        if self.api not in ("v1", "v2"):
            raise ConfigError(f"OSH_INFLUX_API={self.api!r}: expected 'v1' or 'v2'")
        if self.api == "v2" and not (self.token and self.org and self.bucket):
            raise ConfigError("OSH_INFLUX_API=v2 needs OSH_INFLUX_TOKEN, OSH_INFLUX_ORG and OSH_INFLUX_BUCKET")

    def __repr__(self) -> str:
        """No secrets: token, password and any user info in the URL are left out."""
        return (
            f"InfluxConfig(url={_without_userinfo(httpx.URL(self.url))!r}, api={self.api!r}, "
            f"db={self.database!r}, org={self.org!r}, bucket={self.bucket!r}, user={self.user!r})"
        )

    @property
    def database(self) -> str:
        return self.db or (self.bucket if self.api == "v2" and self.bucket else "osh")


class InfluxStore:
    """`storage.base.Store` on InfluxDB; thread-safe like its httpx client."""

    def __init__(
        self,
        config: InfluxConfig,
        *,
        retention: rec.Retention | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.retention = retention or rec.Retention()
        url = httpx.URL(config.url)
        display = _without_userinfo(url)
        client = httpx.Client(
            base_url=display, timeout=config.timeout_s, transport=transport, headers=_auth_headers(config)
        )
        user = config.user or url.username or None
        if user and config.api == "v1":  # v1 users: HTTP Basic (never in the query string)
            client.auth = httpx.BasicAuth(user, config.password or url.password or "")
        gzip_bodies = config.gzip if config.gzip is not None else not _is_loopback(url.host)
        self.http = InfluxHttp(client, display_url=display, gzip_bodies=gzip_bodies, retry=config.retry, sleep=sleep)
        self._prefixes = lp.PrefixCache()
        self._lanes = ThreadPoolExecutor(max(1, config.lanes), thread_name_prefix="influx-lane")
        self._ready = False
        try:
            self._ensure_ready()
        except StoreError as e:
            if not e.retryable:
                self.close()
                raise
            log.warning("InfluxDB not reachable yet, will retry on write: %s", e)

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        c = self.config
        if not c.manage_schema:
            self._ready = True
            return
        if c.api == "v1":
            setup_v1(self.http, c.database, self.retention)
        else:
            assert c.org and c.bucket  # checked by InfluxConfig
            setup_v2(self.http, c.org, c.bucket, c.database, self.retention)
        self._ready = True

    def _write_target(self, kind: RecordKind) -> tuple[str, dict[str, str]]:
        c = self.config
        if c.api == "v1":
            return "/write", {"db": c.database, "rp": RP_NAMES[kind], "precision": "ms"}
        assert c.org and c.bucket
        return "/api/v2/write", {"org": c.org, "bucket": c.bucket, "precision": "ms"}

    # -- writes -------------------------------------------------------------------------------

    def write_readings(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> None:
        if len(batch) == 0:
            return
        ok, rejected = rec.screen_readings(keys, batch)
        if not ok.all():
            batch = ReadingBatch(batch.channel[ok], batch.t_s[ok], batch.value[ok])
        self._ensure_ready()
        lanes = self.config.lanes if len(batch) > self.config.batch_lines else 1
        if lanes == 1:
            refused = self._write_lane(keys, batch)
        else:
            parts = [batch.channel % lanes == lane for lane in range(lanes)]
            futures = [
                self._lanes.submit(self._write_lane, keys, ReadingBatch(batch.channel[m], batch.t_s[m], batch.value[m]))
                for m in parts
            ]
            wait(futures)
            refused = [r for f in futures for r in f.result()]
        if rejected or refused:
            raise PartialWriteError(rejected + refused, accepted=len(batch) - len(refused))

    def _write_lane(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> list[Rejected]:
        """Post the lines of `batch` chunk after chunk on one connection."""
        chunks = lp.reading_lines(keys, batch, self._prefixes, self.config.batch_lines)
        return self._write_chunks(RecordKind.READINGS, chunks)

    def write_exposures(self, records: Sequence[ExposureRecord]) -> None:
        lines, rejected = [], []
        for r in records:
            if problem := rec.channel_problem(r.key):
                rejected.append(Rejected(repr(r), problem))
            else:
                lines.append(lp.exposure_line(r))
        self._write_lines(RecordKind.EXPOSURES, lines, rejected)

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        lines, rejected = [], []
        for e in events:
            tags = {
                "site": e.site,
                "zone": e.zone,
                "device": e.device,
                "worker": e.worker,
                "audit_chain": e.audit_chain,
            }
            problems = [p for n, v in tags.items() if v is not None and (p := rec.tag_problem(n, v))]
            if problems:
                rejected.append(Rejected(lp.alert_line(e), problems[0]))
            else:
                lines.append(lp.alert_line(e))
        self._write_lines(RecordKind.ALERTS, lines, rejected)

    def _write_lines(self, kind: RecordKind, lines: list[str], rejected: list[Rejected]) -> None:
        size = self.config.batch_lines
        chunks = (lines[i : i + size] for i in range(0, len(lines), size))
        refused = self._write_chunks(kind, chunks) if lines else []
        if rejected or refused:
            raise PartialWriteError(rejected + refused, accepted=len(lines) - len(refused))

    def _write_chunks(self, kind: RecordKind, chunks: Iterable[list[str]]) -> list[Rejected]:
        self._ensure_ready()
        path, params = self._write_target(kind)
        return [r for chunk in chunks for r in self._post(path, params, chunk)]

    def _post(self, path: str, params: dict[str, str], lines: list[str]) -> list[Rejected]:
        try:
            return self.http.write(path, params, lines)
        except DatabaseMissing:  # dropped behind our back, or set up while unreachable
            self._ready = False
            self._ensure_ready()
            return self.http.write(path, params, lines)

    # -- reads --------------------------------------------------------------------------------

    def query(self, q: HistoryQuery) -> Iterator[dict[str, Any]]:
        """Rows of `COLUMNS[q.kind]` in time order (ties by tag set), streamed."""
        self._ensure_ready()
        rp = RP_NAMES[q.kind] if self.config.api == "v1" else V2_RP
        params = {
            "db": self.config.database, "rp": rp, "q": _select(q), "epoch": "ms",
            "chunked": "true", "chunk_size": str(QUERY_CHUNK_ROWS),
        }  # fmt: skip
        rows = _in_tag_order(q.kind, self._raw_rows(q.kind, params), reverse=q.newest_first)
        return itertools.islice(rows, q.limit) if q.limit is not None else rows

    def _raw_rows(self, kind: RecordKind, params: dict[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for chunk in self.http.stream(params):
            if "error" in chunk:
                raise StoreError(f"InfluxDB query failed: {chunk['error']}", retryable=False)
            for result in chunk.get("results", []):
                if "error" in result:
                    raise StoreError(f"InfluxDB query failed: {result['error']}", retryable=False)
                for series in result.get("series", []):
                    columns = series["columns"]
                    for values in series["values"]:
                        raw = dict(zip(columns, values, strict=True))
                        t_ms = int(raw["time"])
                        yield t_ms, _row(kind, t_ms, raw)

    def latest_readings(self, t_from_s: float, site: str | None = None) -> list[dict[str, Any]]:
        """The last reading of every channel at or after `t_from_s` (InfluxQL `last()` per series)."""
        self._ensure_ready()
        where = f"time >= {rec.ms_bound(t_from_s)}ms" + (f' AND "site" = {quote_string(site)}' if site else "")
        tags = ", ".join(f'"{t}"' for t in rec.TAGS[RecordKind.READINGS])
        q = f'SELECT last("value") AS "value" FROM "reading" WHERE {where} GROUP BY {tags}'
        rp = RP_NAMES[RecordKind.READINGS] if self.config.api == "v1" else V2_RP
        params = {"db": self.config.database, "rp": rp, "q": q, "epoch": "ms", "chunked": "true"}
        rows: list[dict[str, Any]] = []
        for chunk in self.http.stream(params):
            for result in chunk.get("results", []):
                if "error" in result:
                    raise StoreError(f"InfluxDB query failed: {result['error']}", retryable=False)
                for series in result.get("series", []):
                    for values in series["values"]:
                        raw = {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
                        rows.append(_row(RecordKind.READINGS, int(raw["time"]), raw))
        return rows

    def ping(self, timeout_s: float = 2.0) -> None:
        """Raise `StoreError` unless the server answers its health endpoint now (no retries)."""
        path = "/ping" if self.config.api == "v1" else "/health"
        try:
            r = self.http.client.get(path, timeout=timeout_s)
        except httpx.HTTPError as e:
            raise StoreError(f"InfluxDB at {self.http.display_url} unreachable ({type(e).__name__})") from None
        if r.status_code >= 400:
            raise StoreError(f"InfluxDB at {self.http.display_url} answered {r.status_code} to {path}")

    def probe(self) -> None:
        """Check that the server answers and the database exists, without creating anything."""
        try:
            influxql(self.http, "SHOW MEASUREMENTS LIMIT 1", db=self.config.database)
        except StoreError as e:
            if "database not found" in str(e):
                raise StoreError(
                    f"no InfluxDB database {self.config.database!r} at {self.http.display_url} "
                    "(OSH_INFLUX_DB / OSH_INFLUX_BUCKET): nothing was created",
                    retryable=False,
                ) from None
            raise

    def sites(self) -> list[str]:
        self._ensure_ready()
        found: set[str] = set()
        for kind, measurement in MEASUREMENT.items():
            rp = RP_NAMES[kind] if self.config.api == "v1" else V2_RP
            source = f"{quote_ident(rp)}.{quote_ident(measurement)}"
            statement = f'SHOW TAG VALUES FROM {source} WITH KEY = "site"'
            for series in influxql(self.http, statement, db=self.config.database):
                found.update(str(v[1]) for v in series.get("values", []))
        return sorted(found)

    def close(self) -> None:
        self._lanes.shutdown(wait=True)
        self.http.client.close()


def _without_userinfo(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None)).rstrip("/")


def _auth_headers(config: InfluxConfig) -> dict[str, str]:
    return {"Authorization": f"Token {config.token}"} if config.token else {}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _select(q: HistoryQuery) -> str:
    """InfluxQL for a history query (filters that do not apply to the kind are ignored)."""
    where = [
        f"{quote_ident(name)} = {quote_string(value)}"
        for name in ("site", "zone", "device", "worker", "hazard", "rule", "severity")
        if (value := getattr(q, name)) is not None and name in rec.TAGS[q.kind]
    ]
    if q.t_from_s is not None:
        where.append(f"time >= {rec.ms_bound(q.t_from_s)}ms")
    if q.t_to_s is not None:
        where.append(f"time < {rec.ms_bound(q.t_to_s)}ms")
    sql = f"SELECT * FROM {quote_ident(MEASUREMENT[q.kind])}"
    order = " ORDER BY time DESC" if q.newest_first else " ORDER BY time ASC"
    return sql + (" WHERE " + " AND ".join(where) if where else "") + order


def _row(kind: RecordKind, t_ms: int, raw: dict[str, Any]) -> dict[str, Any]:
    if kind is RecordKind.READINGS:
        return rec.reading_row(t_ms, raw, raw["value"])
    if kind is RecordKind.EXPOSURES:
        limits = {k: v for k, v in raw.items() if k.startswith("limit_") and v is not None}
        return rec.exposure_row(t_ms, raw, limits)
    return rec.alert_row(t_ms, raw)


def _in_tag_order(
    kind: RecordKind, rows: Iterator[tuple[int, dict[str, Any]]], *, reverse: bool = False
) -> Iterator[dict[str, Any]]:
    """Rows come in time order; put each group of equal times in tag order, like SqliteStore."""
    for _, group in itertools.groupby(rows, key=lambda tr: tr[0]):
        members = [row for _, row in group]
        if len(members) > 1:
            members.sort(key=lambda row: rec.tie_key(kind, row), reverse=reverse)
        yield from members
