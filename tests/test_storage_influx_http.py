"""InfluxDB HTTP policy without a server: retries, backoff, 400 attribution, secrets, v2 set-up.

These run on httpx.MockTransport. Server behaviour itself (partial writes, escaping, gzip) is
tested on a real influxd in test_storage_influx.py; the InfluxDB 2.x set-up calls (bucket, DBRP)
are checked here against responses shaped like InfluxDB 2.x's documented API, since no 2.x
server is available in the test environment (docs/storage.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rules.errors import ConfigError, StoreError
from storage.base import HistoryQuery, PartialWriteError, RecordKind
from storage.influx import InfluxConfig, InfluxStore
from storage.influx_http import RetryPolicy
from tests.storage_data import KEYS, grid

Handler = Callable[[httpx.Request], httpx.Response]


def make_store(handler: Handler, sleeps: list[float] | None = None, **config: Any) -> InfluxStore:
    config.setdefault("url", "http://127.0.0.1:8086")
    config.setdefault("manage_schema", False)
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return InfluxStore(InfluxConfig(**config), transport=httpx.MockTransport(handler), sleep=sleep)


def test_5xx_is_retried_with_capped_jittered_backoff() -> None:
    answers = iter([503, 500, 204])
    sleeps: list[float] = []
    store = make_store(lambda r: httpx.Response(next(answers)), sleeps, retry=RetryPolicy(4, 0.2, 0.3))
    store.write_readings(KEYS, grid(2))
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.3 and 0 <= sleeps[1] <= 0.3  # U(0, min(cap, base * 2**n))


def test_timeouts_end_in_a_retryable_error() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    store = make_store(handler, retry=RetryPolicy(attempts=3))
    with pytest.raises(StoreError, match=r"timed out .* after 3 attempts") as info:
        store.write_readings(KEYS, grid(1))
    assert info.value.retryable and len(calls) == 3


def _partial_server(bodies: list[bytes]) -> Handler:
    """Answers like InfluxDB 1.x: stores good lines, drops lines with `value=-1`, says only how many."""

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        dropped = sum(1 for line in request.content.split(b"\n") if b" value=-1.0 " in line)
        if dropped:
            error = f"partial write: field type conflict: input field dropped={dropped}"
            return httpx.Response(400, json={"error": error})
        return httpx.Response(204)

    return handler


def test_400_is_not_retried_and_the_refused_lines_are_found() -> None:
    bodies: list[bytes] = []
    store = make_store(_partial_server(bodies), batch_lines=64)
    b = grid(25)  # 100 lines: chunks of 64 + 36
    b.value[[5, 77]] = -1.0
    with pytest.raises(PartialWriteError) as info:
        store.write_readings(KEYS, b)
    assert [r.record.split(" ")[1] for r in info.value.rejected] == ["value=-1.0", "value=-1.0"]
    assert all("field type conflict" in r.reason for r in info.value.rejected)
    assert info.value.accepted == 98 and not info.value.retryable
    assert bodies.count(bodies[0]) == 1  # the failed request itself was never sent again
    assert len(bodies) <= 2 + 2 * 2 * 7  # bisection: at most 2 requests per level per bad line


def test_too_large_bodies_are_split() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        lines = request.content.count(b"\n") + 1
        sizes.append(lines)
        return httpx.Response(413 if lines > 30 else 204)

    make_store(handler, batch_lines=100).write_readings(KEYS, grid(25))
    assert sum(s for s in sizes if s <= 30) == 100


def test_bad_credentials_are_not_retried_and_never_shown() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, json={"code": "unauthorized", "message": "unauthorized access"})

    url = "http://admin:hunter2@127.0.0.1:8086"
    store = make_store(handler, url=url, api="v2", token="s3cr3t-token", org="o", bucket="b")
    with pytest.raises(StoreError) as info:
        store.write_readings(KEYS, grid(1))
    assert not info.value.retryable and len(calls) == 1
    assert "hunter2" not in str(info.value) and "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in repr(store.config)
    assert calls[0].headers["Authorization"] == "Token s3cr3t-token"


def test_v2_needs_token_org_and_bucket() -> None:
    with pytest.raises(ConfigError, match="OSH_INFLUX_TOKEN"):
        InfluxConfig(api="v2", org="o")
    with pytest.raises(ConfigError, match="'v1' or 'v2'"):
        InfluxConfig(api="v3")


class RecordedV2:
    """InfluxDB 2.x answers for an empty server with org `mine` (shapes from the 2.x API docs)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        body: dict[str, Any] = {}
        if request.content and request.url.path != "/api/v2/write":
            body = json.loads(request.content)
        self.requests.append((request.method, request.url.path, params, body))
        route = (request.method, request.url.path)
        if route == ("GET", "/api/v2/buckets"):
            return httpx.Response(200, json={"links": {"self": "/api/v2/buckets"}, "buckets": []})
        if route == ("GET", "/api/v2/orgs"):
            return httpx.Response(200, json={"orgs": [{"id": "0a1b2c3d4e5f6a7b", "name": "mine"}]})
        if route == ("POST", "/api/v2/buckets"):
            return httpx.Response(201, json={"id": "b0b0b0b0b0b0b0b0", "orgID": body["orgID"], "name": body["name"]})
        if route == ("GET", "/api/v2/dbrps"):
            return httpx.Response(200, json={"content": []})
        if route == ("POST", "/api/v2/dbrps"):
            return httpx.Response(201, json={"content": {"id": "d1", **body}})
        if route == ("POST", "/api/v2/write"):
            return httpx.Response(204)
        if route == ("GET", "/query"):
            return httpx.Response(200, content=b'{"results":[{"statement_id":0}]}\n')
        return httpx.Response(404, json={"code": "not found", "message": "path not found"})


def test_v2_creates_bucket_and_dbrp_then_writes_and_queries_with_the_token() -> None:
    server = RecordedV2()
    store = make_store(server, api="v2", token="tok", org="mine", bucket="osh", manage_schema=True)
    store.write_readings(KEYS, grid(1))
    assert list(store.query(HistoryQuery(RecordKind.ALERTS))) == []
    routes = [(m, p) for m, p, _, _ in server.requests]
    assert routes == [
        ("GET", "/api/v2/buckets"), ("GET", "/api/v2/orgs"), ("POST", "/api/v2/buckets"),
        ("GET", "/api/v2/dbrps"), *[("POST", "/api/v2/dbrps")] * 4, ("POST", "/api/v2/write"), ("GET", "/query"),
    ]  # fmt: skip
    bucket = server.requests[2][3]
    assert bucket == {
        "orgID": "0a1b2c3d4e5f6a7b", "name": "osh",
        "retentionRules": [{"type": "expire", "everySeconds": 400 * 86_400}],
    }  # fmt: skip
    assert server.requests[4][3] == {
        "org": "mine", "bucketID": "b0b0b0b0b0b0b0b0", "database": "osh", "retention_policy": "autogen",
        "default": True,
    }  # fmt: skip
    # the v1 policy names map onto the bucket too, so InfluxQL written for 1.x (Grafana) works
    assert [r[3]["retention_policy"] for r in server.requests[5:8]] == ["osh_readings", "osh_exposures", "osh_alerts"]
    assert not any(r[3]["default"] for r in server.requests[5:8])
    assert server.requests[8][2] == {"org": "mine", "bucket": "osh", "precision": "ms"}
    assert server.requests[9][2]["db"] == "osh" and server.requests[9][2]["rp"] == "autogen"
