"""Open the configured store (`OSH_STORE`): the gateway and the CLI call only this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rules.errors import ConfigError
from storage.base import PartialWriteError, Store
from storage.records import Retention

DEFAULT_SQLITE_PATH = Path("oshmon.db")


def open_store(
    kind: str,
    *,
    sqlite_path: Path | str | None = None,
    influx_url: str = "http://127.0.0.1:8086",
    influx_api: str = "v1",
    influx_db: str | None = None,
    influx_org: str | None = None,
    influx_bucket: str | None = None,
    influx_token: str | None = None,
    influx_user: str | None = None,
    influx_password: str | None = None,
    retention: Retention | None = None,
    spool_dir: Path | str | None = None,
    on_rejected: Callable[[PartialWriteError], None] | None = None,
) -> Store:
    """A ready store of `kind` (`sqlite` | `influx`); with `spool_dir`, writes that cannot reach
    the store are spooled there on disk and replayed in order (storage/spooled.py); records the
    store refuses during a replay go to `on_rejected` (to be dead-lettered)."""
    store: Store
    if kind == "sqlite":
        from storage.sqlite import SqliteStore

        store = SqliteStore(Path(sqlite_path or DEFAULT_SQLITE_PATH), retention=retention)
    elif kind == "influx":
        from storage.influx import InfluxConfig, InfluxStore

        config = InfluxConfig(
            url=influx_url, api=influx_api, db=influx_db, org=influx_org, bucket=influx_bucket,
            token=influx_token, user=influx_user, password=influx_password,
        )  # fmt: skip
        store = InfluxStore(config, retention=retention)
    else:
        raise ConfigError(f"OSH_STORE={kind!r}: expected 'influx' or 'sqlite'")
    if spool_dir is not None:
        from storage.spooled import SpooledStore

        store = SpooledStore(store, Path(spool_dir), on_rejected=on_rejected)
    return store
