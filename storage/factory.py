"""Open the configured store (`OSH_STORE`): the gateway and the CLI call only this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rules.errors import ConfigError, StoreError
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
    read_only: bool = False,
) -> Store:
    """A ready store of `kind` (`sqlite` | `influx`); with `spool_dir`, writes that cannot reach
    the store are spooled there on disk and replayed in order (storage/spooled.py); records the
    store refuses during a replay go to `on_rejected` (to be dead-lettered).

    `read_only` (the CLI's reading commands): the store must exist and answer already; nothing is
    created (no SQLite file, no InfluxDB database): a missing one is a `StoreError` naming it."""
    store: Store
    if kind == "sqlite":
        from storage.sqlite import SqliteStore

        path = Path(sqlite_path or DEFAULT_SQLITE_PATH)
        if read_only and not path.is_file():
            raise StoreError(
                f"no SQLite store at {path.absolute()} (OSH_SQLITE_PATH): nothing was created", retryable=False
            )
        store = SqliteStore(path, retention=retention)
    elif kind == "influx":
        from storage.influx import InfluxConfig, InfluxStore
        from storage.influx_http import RetryPolicy

        config = InfluxConfig(
            url=influx_url, api=influx_api, db=influx_db, org=influx_org, bucket=influx_bucket,
            token=influx_token, user=influx_user, password=influx_password,
            manage_schema=not read_only, retry=RetryPolicy(attempts=2) if read_only else RetryPolicy(),
        )  # fmt: skip
        store = InfluxStore(config, retention=retention)
        if read_only:
            try:
                store.probe()
            except StoreError:
                store.close()
                raise
    else:
        raise ConfigError(f"OSH_STORE={kind!r}: expected 'influx' or 'sqlite'")
    if spool_dir is not None:
        from storage.spooled import SpooledStore

        store = SpooledStore(store, Path(spool_dir), on_rejected=on_rejected)
    return store
