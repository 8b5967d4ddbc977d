"""InfluxStore on a real influxd (1.x): schema set-up, escaping round trip, partial writes, gzip."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.types import AlertEvent
from rules.errors import StoreError
from rules.types import ChannelKey, Hazard
from storage.base import HistoryQuery, PartialWriteError, RecordKind
from storage.influx import InfluxConfig, InfluxStore
from storage.records import Retention, tag_problem
from storage.sqlite import SqliteStore
from tests.services import Influxd, VictoriaMetrics, free_port, run_influxd
from tests.storage_data import KEYS, T0, alert, batch, grid

pytestmark = pytest.mark.integration
_names = (f"influx{i}" for i in itertools.count())


@pytest.fixture
def store(influxd: Influxd) -> Iterator[InfluxStore]:
    s = InfluxStore(InfluxConfig(url=influxd.url, db=next(_names)))
    yield s
    s.close()


def influxql(server: Influxd, q: str, db: str = "") -> list[Any]:
    body = httpx.post(f"{server.url}/query", params={"q": q, "db": db}).json()
    return [row for s in body["results"][0].get("series", []) for row in s["values"]]


def test_database_and_retention_policies_are_created_then_follow_the_config(influxd: Influxd) -> None:
    db = next(_names)
    InfluxStore(InfluxConfig(url=influxd.url, db=db)).close()
    rps = {row[0]: (row[1], row[4]) for row in influxql(influxd, f'SHOW RETENTION POLICIES ON "{db}"')}
    assert rps["osh_readings"] == ("9600h0m0s", True)  # 400 days, the database's default
    assert rps["osh_alerts"] == rps["osh_exposures"] == ("9600h0m0s", False)
    InfluxStore(InfluxConfig(url=influxd.url, db=db), retention=Retention(30, 0, 730)).close()
    durations = {row[0]: row[1] for row in influxql(influxd, f'SHOW RETENTION POLICIES ON "{db}"')}
    got = (durations["osh_readings"], durations["osh_exposures"], durations["osh_alerts"])
    assert got == ("720h0m0s", "0s", "17520h0m0s")


def test_points_beyond_retention_are_rejected_with_the_server_reason(influxd: Influxd) -> None:
    store = InfluxStore(InfluxConfig(url=influxd.url, db=next(_names)), retention=Retention(readings_days=1))
    now = time.time()
    with pytest.raises(PartialWriteError) as info:
        store.write_readings(KEYS, batch([0, 1, 2], [now - 60, now - 3 * 86_400, now - 30], [1.0, 2.0, 3.0]))
    (refused,) = info.value.rejected
    assert "beyond retention policy" in refused.reason
    assert refused.record.startswith("reading,device=gd-17,hazard=ch4,site=kop-1,zone=north-adit value=2.0 ")
    assert info.value.accepted == 2
    assert [r["value"] for r in store.query(HistoryQuery(RecordKind.READINGS))] == [1.0, 3.0]
    store.close()


def test_field_type_conflict_rejects_only_the_conflicting_lines(store: InfluxStore, influxd: Influxd) -> None:
    far = T0 + 30 * 86_400  # another shard: the integer field only conflicts there
    line = f"reading,device=x,hazard=co,site=s,zone=z value=1i {int(far * 1000)}"
    params = {"db": store.config.database, "rp": "osh_readings", "precision": "ms"}
    assert httpx.post(f"{influxd.url}/write", params=params, content=line).status_code == 204
    b = grid(2000)  # 8000 lines in 2 chunks; one line in the conflicting shard
    b = batch([*b.channel.tolist(), 2], [*b.t_s.tolist(), far], [*b.value.tolist(), 7.0])
    with pytest.raises(PartialWriteError) as info:
        store.write_readings(KEYS, b)
    (refused,) = info.value.rejected
    assert "field type conflict" in refused.reason
    assert refused.record == (
        f"reading,device=pm-3,hazard=noise,site=kop-1,worker=w-042,zone=south value=7.0 {int(far * 1000)}"
    )
    assert sum(1 for _ in store.query(HistoryQuery(RecordKind.READINGS, site="kop-1"))) == 6000
    assert sum(1 for _ in store.query(HistoryQuery(RecordKind.READINGS))) == 8001  # + the 1i point


def test_gzip_bodies_are_accepted(influxd: Influxd) -> None:
    store = InfluxStore(InfluxConfig(url=influxd.url, db=next(_names), gzip=True))
    assert store.http.gzip_bodies
    store.write_readings(KEYS, grid(3000))
    assert sum(1 for _ in store.query(HistoryQuery(RecordKind.READINGS))) == 12000
    store.close()


def test_loopback_server_gets_plain_bodies(store: InfluxStore) -> None:
    assert not store.http.gzip_bodies


def test_unreachable_server_is_a_retryable_error() -> None:
    config = InfluxConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    store = InfluxStore(config, sleep=lambda s: None)  # set-up is deferred, not fatal
    store.write_exposures([])  # nothing to send: no request, no error
    store.write_alert_events([])
    store.write_readings(KEYS, batch([], [], []))
    with pytest.raises(StoreError) as info:
        store.write_readings(KEYS, grid(1))
    assert info.value.retryable and "unreachable" in str(info.value)
    store.close()


# -- escaping: hypothesis round trip through the real server ---------------------------------

_ODD = " ,=\\\"'\t\n=ü€😀x_-."
tag_text = st.one_of(st.text(alphabet=_ODD, min_size=1, max_size=12), st.text(min_size=1, max_size=12))
field_text = st.one_of(st.text(alphabet=_ODD, max_size=30), st.text(max_size=30))
_times = itertools.count()


@st.composite
def odd_events(draw: st.DrawFn) -> AlertEvent:
    key = ChannelKey(draw(tag_text), draw(tag_text), draw(tag_text), Hazard.CO)
    worker = draw(st.none() | tag_text)
    value = draw(st.none() | st.floats(allow_nan=False, allow_infinity=False))
    return alert(
        t_s=T0 + next(_times), key=key, worker=worker, value=value, alert_id=draw(field_text),
        message=draw(field_text), note=draw(st.none() | field_text), by=draw(st.none() | field_text),
    )  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=odd_events())
def test_odd_text_round_trips_or_is_refused_with_a_reason(influxd: Influxd, event: AlertEvent) -> None:
    store = _shared_store(influxd)
    tags = {"site": event.site, "zone": event.zone, "device": event.device, "worker": event.worker}
    problems = [p for n, v in tags.items() if v is not None and (p := tag_problem(n, v))]
    if problems:
        with pytest.raises(PartialWriteError, match=r"line break|backslash|NUL"):
            store.write_alert_events([event])
        return
    store.write_alert_events([event])
    t_from, t_to = event.t_s, event.t_s + 0.5
    got = list(store.query(HistoryQuery(RecordKind.ALERTS, t_from_s=t_from, t_to_s=t_to)))
    assert got == [event.to_wire()]
    by_tags = HistoryQuery(RecordKind.ALERTS, site=event.site, worker=event.worker, t_from_s=t_from, t_to_s=t_to)
    assert list(store.query(by_tags)) == got  # InfluxQL string literals are escaped too


_SHARED: dict[str, InfluxStore] = {}


def _shared_store(server: Influxd) -> InfluxStore:
    if server.url not in _SHARED:
        _SHARED[server.url] = InfluxStore(InfluxConfig(url=server.url, db=next(_names)))
    return _SHARED[server.url]


@pytest.fixture(autouse=True, scope="module")
def _close_shared() -> Iterator[None]:
    yield
    for s in _SHARED.values():
        s.close()


# -- v1 with user/password; the v2 write request on a server that speaks it -------------------


def test_v1_user_and_password() -> None:
    with run_influxd(auth_enabled=True) as server:
        create = "CREATE USER admin WITH PASSWORD 'pa ss' WITH ALL PRIVILEGES"
        assert httpx.post(f"{server.url}/query", params={"q": create}).status_code == 200
        with pytest.raises(StoreError, match="refused the credentials") as info:
            InfluxStore(InfluxConfig(url=server.url, user="admin", password="wrong"))
        assert not info.value.retryable and "wrong" not in str(info.value)
        store = InfluxStore(InfluxConfig(url=server.url, user="admin", password="pa ss"))
        store.write_readings(KEYS, grid(2))
        assert sum(1 for _ in store.query(HistoryQuery(RecordKind.READINGS))) == 8
        store.close()


def test_v2_write_request_on_victoria_metrics(victoria_metrics: VictoriaMetrics) -> None:
    config = InfluxConfig(
        url=victoria_metrics.url, api="v2", token="t0ken", org="mine", bucket="osh", manage_schema=False
    )
    store = InfluxStore(config)
    odd = ChannelKey("kop 1", "north,adit=2", "gd\\17", Hazard.CO, worker="Zoë Ł")
    store.write_readings([odd, *KEYS], batch([0, 0, 1], [T0, T0 + 0.25, T0], [1.5, 2.5, 3.0]))
    store.close()
    httpx.get(f"{victoria_metrics.url}/internal/force_flush").raise_for_status()
    export = httpx.get(f"{victoria_metrics.url}/api/v1/export", params={"match[]": '{__name__="reading_value"}'})
    series = {json.dumps(s["metric"], sort_keys=True): s for s in map(json.loads, export.text.splitlines())}
    labels = {
        "__name__": "reading_value", "site": "kop 1", "zone": "north,adit=2", "device": "gd\\17",
        "hazard": "co", "worker": "Zoë Ł",
    }  # fmt: skip
    got = series[json.dumps(labels, sort_keys=True)]
    assert (got["values"], got["timestamps"]) == ([1.5, 2.5], [int(T0 * 1000), int(T0 * 1000) + 250])
    assert len(series) == 2


_sites = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    workers=st.lists(st.none() | tag_text, min_size=1, max_size=3),
    rows=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 10**6),
            st.floats(allow_nan=False, allow_infinity=False, width=64),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_random_readings_give_the_same_rows_in_both_stores(
    influxd: Influxd, tmp_path_factory: pytest.TempPathFactory, workers: list[str | None], rows: list[Any]
) -> None:
    site = f"h{next(_sites)}"  # isolates this example in the shared database
    keys = [ChannelKey(site, "z 1", f"d,{i}", Hazard.NOISE, w) for i, w in enumerate(workers)]
    if any(w is not None and tag_problem("worker", w) for w in workers):
        return
    b = batch([c % len(keys) for c, _, _ in rows], [T0 + ms / 1000 for _, ms, _ in rows], [v for *_, v in rows])
    sqlite = SqliteStore(tmp_path_factory.mktemp("h") / "osh.db")
    influx = _shared_store(influxd)
    for store in (sqlite, influx):
        store.write_readings(keys, b)
    q = HistoryQuery(RecordKind.READINGS, site=site)
    assert list(influx.query(q)) == list(sqlite.query(q))
    sqlite.close()
