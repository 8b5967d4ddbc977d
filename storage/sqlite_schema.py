"""SQLite schema of the embedded store: SPEC §4 `reading`, `exposure`, `alert`, as tables.

A point is identified as in InfluxDB: its tag set plus its time stamp (whole milliseconds).
Writing the same point again overwrites it; like InfluxDB, a field left out (NULL) on the
second write keeps its earlier value, and exposure limits are merged key by key.
Readings keep their tag set in `series` (one row per channel) to stay small and fast; the
`readings` view shows them joined, for people using the `sqlite3` shell.
"""

from __future__ import annotations

SCHEMA_VERSION = 5
#: Columns added to `alert` in version 5 (the worst value so far, why an escalation).
_ALERT_V5_COLUMNS = ("peak REAL", "reason TEXT")

_ALERT_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    site TEXT NOT NULL, zone TEXT NOT NULL, device TEXT NOT NULL, hazard TEXT NOT NULL,
    worker TEXT NOT NULL DEFAULT '', rule TEXT NOT NULL, severity TEXT NOT NULL,
    event TEXT NOT NULL, t_ms INTEGER NOT NULL, audit_key TEXT NOT NULL DEFAULT '',
    alert_id TEXT, value REAL, threshold REAL, unit TEXT, since_s REAL, profile TEXT,
    limit_source TEXT, action TEXT, message TEXT, by TEXT, note TEXT,
    audit_chain TEXT, audit_seq INTEGER, prev_hash TEXT, hash TEXT{extra},
    PRIMARY KEY (site, zone, device, hazard, worker, rule, severity, event, t_ms, audit_key)
)"""
_V2_ALERT_COLUMNS = ("site, zone, device, hazard, worker, rule, severity, event, t_ms, alert_id, value, "
                     "threshold, unit, since_s, profile, limit_source, action, message, by, note, "
                     "audit_chain, audit_seq, prev_hash, hash")  # fmt: skip

#: Statements that bring a store of version N (key) up to N + 1 (run in one transaction).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: tuple(
        f"ALTER TABLE alert ADD COLUMN {c}"
        for c in ("audit_chain TEXT", "audit_seq INTEGER", "prev_hash TEXT", "hash TEXT")
    ),
    # v3: `audit_key` ({chain}:{audit_seq}) joins the primary key, so that two events of one alert
    # in the same millisecond (two acks) are two rows (issue 15); the table is rebuilt.
    2: (
        _ALERT_TABLE.format(name="alert_v3", extra=""),
        f"INSERT INTO alert_v3 ({_V2_ALERT_COLUMNS}, audit_key) SELECT {_V2_ALERT_COLUMNS}, "
        "CASE WHEN audit_seq IS NULL THEN '' ELSE coalesce(audit_chain, '') || ':' || printf('%012d', audit_seq) END "
        "FROM alert",
        "DROP TABLE alert",
        "ALTER TABLE alert_v3 RENAME TO alert",
    ),
    # v4: `shift_avg` (∫C dt / shift length) of records whose twa limit is a shift average
    # (30 CFR 70.100; docs/spec-changes.md); NULL for every other record.
    3: ("ALTER TABLE exposure ADD COLUMN shift_avg REAL",),
    # v5: `peak` and `reason` of alert events (docs/spec-changes.md).
    4: tuple(f"ALTER TABLE alert ADD COLUMN {c}" for c in _ALERT_V5_COLUMNS),
}


def added_to(stmt: str) -> str:
    """The table an `ALTER TABLE t ADD COLUMN` migration changes ("" for any other statement): a
    store that lacks the table gets it, column included, from SCHEMA instead."""
    words = stmt.split()
    return words[2] if words[:2] == ["ALTER", "TABLE"] and words[3:5] == ["ADD", "COLUMN"] else ""


SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, zone TEXT NOT NULL, device TEXT NOT NULL, hazard TEXT NOT NULL,
    worker TEXT NOT NULL DEFAULT '',
    UNIQUE (site, zone, device, hazard, worker)
);
CREATE TABLE IF NOT EXISTS reading (
    series INTEGER NOT NULL REFERENCES series (id),
    t_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, t_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reading_by_time ON reading (t_ms);
CREATE VIEW IF NOT EXISTS readings AS
    SELECT r.t_ms, s.site, s.zone, s.device, s.hazard, s.worker, r.value
    FROM reading r JOIN series s ON s.id = r.series;
CREATE TABLE IF NOT EXISTS exposure (
    site TEXT NOT NULL, zone TEXT NOT NULL, device TEXT NOT NULL, hazard TEXT NOT NULL,
    worker TEXT NOT NULL DEFAULT '', shift TEXT NOT NULL, t_ms INTEGER NOT NULL,
    twa8 REAL, stel15_max REAL, peak REAL, coverage REAL, max_gap_s REAL, lex8h REAL,
    dose_pct REAL, profile TEXT, limits TEXT NOT NULL DEFAULT '{}', final INTEGER,
    sensor_faulty INTEGER, shift_avg REAL,
    PRIMARY KEY (site, zone, device, hazard, worker, shift, t_ms)
);
CREATE INDEX IF NOT EXISTS exposure_by_time ON exposure (t_ms);
"""
    + _ALERT_TABLE.format(name="alert", extra="".join(f", {c}" for c in _ALERT_V5_COLUMNS))
    + """;
CREATE INDEX IF NOT EXISTS alert_by_time ON alert (t_ms);
CREATE INDEX IF NOT EXISTS alert_by_id ON alert (alert_id);
"""
)

UPSERT_READING = (
    "INSERT INTO reading (series, t_ms, value) VALUES (?, ?, ?) "
    "ON CONFLICT (series, t_ms) DO UPDATE SET value = excluded.value"
)

_EXPOSURE_FIELDS = ("twa8", "stel15_max", "peak", "coverage", "max_gap_s", "lex8h", "dose_pct",
                    "profile", "final", "sensor_faulty", "shift_avg")  # fmt: skip
_EXPOSURE_TAGS = ("site", "zone", "device", "hazard", "worker", "shift", "t_ms")
UPSERT_EXPOSURE = (
    f"INSERT INTO exposure ({', '.join(_EXPOSURE_TAGS + _EXPOSURE_FIELDS)}, limits) "
    f"VALUES ({', '.join('?' * (len(_EXPOSURE_TAGS) + len(_EXPOSURE_FIELDS) + 1))}) "
    f"ON CONFLICT ({', '.join(_EXPOSURE_TAGS)}) DO UPDATE SET "
    + ", ".join(f"{f} = coalesce(excluded.{f}, {f})" for f in _EXPOSURE_FIELDS)
    + ", limits = json_patch(limits, excluded.limits)"
)
EXPOSURE_COLUMNS = (*_EXPOSURE_TAGS, *_EXPOSURE_FIELDS, "limits")

_ALERT_TAGS = ("site", "zone", "device", "hazard", "worker", "rule", "severity", "event", "t_ms", "audit_key")
_ALERT_FIELDS = ("alert_id", "value", "threshold", "unit", "since_s", "profile", "limit_source",
                 "action", "message", "by", "note", "audit_chain", "audit_seq", "prev_hash", "hash",
                 "peak", "reason")  # fmt: skip
UPSERT_ALERT = (
    f"INSERT INTO alert ({', '.join(_ALERT_TAGS + _ALERT_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(_ALERT_TAGS) + len(_ALERT_FIELDS)))}) "
    f"ON CONFLICT ({', '.join(_ALERT_TAGS)}) DO UPDATE SET "
    + ", ".join(f"{f} = coalesce(excluded.{f}, {f})" for f in _ALERT_FIELDS)
)
ALERT_COLUMNS = (*_ALERT_TAGS, *_ALERT_FIELDS)
