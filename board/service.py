"""`oshmon board`: one process — MQTT watcher, store reader, web server — until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from board.app import Board, BoardConfig, build_app
from board.auth import LoginThrottle
from board.live import StoreView
from board.state import EVENT_WINDOW_S, BoardState
from board.users import UsersFile
from board.verify import EventVerifier
from board.view import SiteInfo, Snapshot
from gateway.config import Settings, parse_mqtt_url
from gateway.mqtt import MqttWatch
from gateway.observability import bind_http, serve_http
from gateway.runtime import open_configured_store, profile_book, site_configs
from rules.errors import ConfigError
from rules.shifts import SiteConfig
from storage.base import HistoryQuery, RecordKind

log = logging.getLogger(__name__)
SESSION_KEY_FILE = "board-session.key"


def users_path(settings: Settings) -> Path:
    return settings.board_users or settings.state_path / "board-users.json"


def session_secret(settings: Settings) -> str:
    """A random key kept in the state directory (0600): sessions survive a board restart."""
    path = settings.state_path / SESSION_KEY_FILE
    if not path.exists():
        settings.state_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _tls(settings: Settings) -> tuple[Path, Path] | None:
    cert, key = settings.board_tls_cert, settings.board_tls_key
    if (cert is None) != (key is None):
        raise ConfigError("OSH_BOARD_TLS_CERT and OSH_BOARD_TLS_KEY go together (both or neither)")
    if cert is None or key is None:
        return None
    for path in (cert, key):
        if not path.is_file():
            raise ConfigError(f"board TLS file {path} does not exist")
    return cert, key


def _seed(settings: Settings, state: BoardState) -> None:
    """The last 24 h of alert events from the store, so the event list is right from the start."""
    try:
        store = open_configured_store(settings, read_only=True)
    except Exception as exc:  # no store yet: the list fills from MQTT
        log.warning("board: alert history not loaded (%s)", exc)
        return
    try:
        q = HistoryQuery(RecordKind.ALERTS, t_from_s=time.time() - EVENT_WINDOW_S, newest_first=True, limit=2000)
        state.seed_events(list(store.query(q)))
    except Exception as exc:
        log.warning("board: alert history not loaded (%s)", exc)
    finally:
        store.close()


async def run_board(settings: Settings, ready: asyncio.Event | None = None) -> None:
    tls = _tls(settings)
    sock = bind_http(settings.board_listen, "OSH_BOARD_LISTEN")
    book = profile_book(settings)
    sites = site_configs(settings)
    users = UsersFile(users_path(settings))
    if not users.names():
        log.warning("board: no users yet in %s; add one with `oshmon board user add NAME`", users.path)

    def profile_of(site: str) -> str:
        return (sites[site].profile if site in sites else None) or settings.profile

    state = BoardState(settings.topic_prefix)
    verifier = EventVerifier(lambda: open_configured_store(settings, read_only=True), state.touch)
    state.verify = verifier.submit
    await asyncio.to_thread(_seed, settings, state)
    store_view = StoreView(
        open_store=lambda: open_configured_store(settings, read_only=True), book=book, profile_of=profile_of,
        site_config=lambda s: sites.get(s) or SiteConfig(s), max_gap_s=settings.max_gap_s,
    )  # fmt: skip
    p = settings.topic_prefix
    client_id = f"oshmon-board-{socket.gethostname()}-{os.getpid()}"[:64]
    watch = MqttWatch(parse_mqtt_url(settings.mqtt_url), client_id, [f"{p}/+/alarms/#", f"{p}/+/alerts",
                      f"{p}/+/+/+/status"], state.on_message, state.on_connection)  # fmt: skip
    snapshot = Snapshot(state, store_view, lambda s: SiteInfo((sites.get(s) or SiteConfig(s)).tz, profile_of(s)))
    config = BoardConfig(settings.board_public_read, session_secret(settings), settings.board_session_hours,
                         tls is not None, p)  # fmt: skip
    app = build_app(Board(config, state, users, snapshot, watch.publish, LoginThrottle()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = sock.getsockname()[:2]
    log.warning("board on %s://%s:%d (users: %s)", "https" if tls else "http", host, port, users.path)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(watch.run(stop), name="board-mqtt")
        tg.create_task(serve_http(app, sock, stop, tls), name="board-http")
        tg.create_task(_refresh(store_view, state, settings.board_refresh_s, stop), name="board-store")
        tg.create_task(verifier.run(stop), name="board-verify")
        if ready is not None:
            ready.set()
        await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)


async def _refresh(view: StoreView, state: BoardState, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(view.refresh, datetime.now(UTC).timestamp())
        state.touch()
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
