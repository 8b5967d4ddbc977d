"""Create what the InfluxDB store needs, if missing: database and retention policies (v1 API), or
bucket and DBRP mapping (v2 API). Idempotent; run at start and again after a server came back.

v1: one retention policy per record kind, so each keeps its own retention (`osh_readings` is the
database's default, so `SELECT * FROM reading` works in Grafana; exposures and alerts live in
`osh_exposures` / `osh_alerts`). v2: one bucket holds everything, so its retention is the longest
configured (or infinite); InfluxQL reads go through the v1-compatibility `/query` with a DBRP
mapping `db/autogen` → bucket, created if missing (InfluxDB 2.x API: /api/v2/orgs, /api/v2/buckets,
/api/v2/dbrps).
"""

from __future__ import annotations

import re
from typing import Any

from rules.errors import StoreError
from storage.base import RecordKind
from storage.influx_http import InfluxHttp, error_text, status_error
from storage.records import Retention

RP_NAMES: dict[RecordKind, str] = {
    RecordKind.READINGS: "osh_readings",
    RecordKind.EXPOSURES: "osh_exposures",
    RecordKind.ALERTS: "osh_alerts",
}
#: The retention policy name of the DBRP mapping created on InfluxDB 2.x.
V2_RP = "autogen"
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def influxql(http: InfluxHttp, statement: str, db: str | None = None) -> list[dict[str, Any]]:
    """Run one InfluxQL statement (POST /query); returns its series; errors as `StoreError`."""
    params = {"q": statement} | ({"db": db} if db else {})
    response = http.request("POST", "/query", params=params)
    if response.status_code != 200:
        raise status_error(response, f"{http.display_url}/query")
    result = response.json()["results"][0]
    if "error" in result:
        retryable = "requires admin privilege" not in result["error"]
        raise StoreError(f"InfluxDB: {statement.split(' ON ')[0]}: {result['error']}", retryable=retryable)
    return list(result.get("series", []))


def _hours(duration: str) -> int:
    """InfluxDB's "9600h0m0s" (0s = infinite) → whole hours."""
    match = _DURATION.fullmatch(duration)
    return int(match.group(1) or 0) if match else -1


def setup_v1(http: InfluxHttp, db: str, retention: Retention) -> None:
    """Database and one retention policy per kind, with the configured durations."""
    influxql(http, f"CREATE DATABASE {quote_ident(db)}")
    series = influxql(http, f"SHOW RETENTION POLICIES ON {quote_ident(db)}")
    existing = {row[0]: _hours(row[1]) for s in series for row in s.get("values", [])}
    for kind, name in RP_NAMES.items():
        days = retention.days(kind)
        duration = f"{days}d" if days else "INF"
        target = f"{quote_ident(name)} ON {quote_ident(db)} DURATION {duration} REPLICATION 1"
        default = " DEFAULT" if kind is RecordKind.READINGS else ""
        if name not in existing:
            influxql(http, f"CREATE RETENTION POLICY {target}{default}")
        elif existing[name] != days * 24:
            influxql(http, f"ALTER RETENTION POLICY {target}")


def _get_json(http: InfluxHttp, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = http.request("GET", path, params=params)
    if response.status_code != 200:
        raise status_error(response, f"{http.display_url}{path}")
    body: dict[str, Any] = response.json()
    return body


def _send_json(http: InfluxHttp, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.request(method, path, json=body)
    if response.status_code not in (200, 201):
        raise StoreError(
            f"InfluxDB {http.display_url}{path}: HTTP {response.status_code}: {error_text(response)}",
            retryable=response.status_code >= 500,
        )
    result: dict[str, Any] = response.json()
    return result


def setup_v2(http: InfluxHttp, org: str, bucket: str, db: str, retention: Retention) -> None:
    """Bucket (retention = the longest configured) and DBRP mappings `db`/autogen (default) and
    `db`/osh_readings|osh_exposures|osh_alerts → bucket."""
    days = [retention.days(k) for k in RecordKind]
    every_s = 0 if 0 in days else max(days) * 86_400
    rules = [{"type": "expire", "everySeconds": every_s}]
    found = _get_json(http, "/api/v2/buckets", {"org": org, "name": bucket}).get("buckets") or []
    if found:
        bucket_id = str(found[0]["id"])
        current = found[0].get("retentionRules") or [{"everySeconds": 0}]
        if int(current[0].get("everySeconds", 0)) != every_s:
            _send_json(http, "PATCH", f"/api/v2/buckets/{bucket_id}", {"retentionRules": rules})
    else:
        orgs = _get_json(http, "/api/v2/orgs", {"org": org}).get("orgs") or []
        if not orgs:
            raise StoreError(f"InfluxDB: organization {org!r} not found (OSH_INFLUX_ORG)", retryable=False)
        body = {"orgID": orgs[0]["id"], "name": bucket, "retentionRules": rules}
        bucket_id = str(_send_json(http, "POST", "/api/v2/buckets", body)["id"])
    mappings = _get_json(http, "/api/v2/dbrps", {"org": org, "db": db}).get("content") or []
    mapped = {m.get("retention_policy") for m in mappings if m.get("bucketID") == bucket_id}
    # autogen (the default) and the v1 policy names: InfluxQL written for 1.x (Grafana's
    # dashboards in deploy/grafana) reads "osh_exposures"."exposure" on 2.x as well.
    for rp in (V2_RP, *RP_NAMES.values()):
        if rp not in mapped:
            mapping = {"org": org, "bucketID": bucket_id, "database": db, "retention_policy": rp}
            _send_json(http, "POST", "/api/v2/dbrps", mapping | {"default": rp == V2_RP})
