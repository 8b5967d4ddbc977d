"""The gateway's synchronous core: profiles, engine, alert book, store — built from Settings.

`GatewayService` (async, MQTT) drives it; tests and the demo can drive it directly. This is
the one place where the stages are wired together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from pydantic import SecretStr

from alerts.audit import Anchor, AuditChain, verify_chain
from alerts.errors import InvalidAckError, UnknownAlertError
from alerts.health import SensorHealth
from alerts.lifecycle import AlertBook
from alerts.sinks.config import build_dispatcher
from alerts.sinks.dispatcher import Dispatcher
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from gateway.batching import Sorted
from gateway.checkpoint import ALERT_CHECKPOINT, Checkpoint, load_alerts
from gateway.cli_text import open_alert_lines, width
from gateway.config import Settings
from gateway.coverage import CoverageWatch, log_site_profiles
from gateway.inventory import CapacityAlerts, ChannelInventory, inventory_for
from gateway.state_dir import LEGACY_STATE_DIR, claim_state_dir, private_state_dir
from rules.engine import ExposureEngine
from rules.errors import ConfigError, StoreError
from rules.profiles import ProfileBook
from rules.results import EngineResult, ExposureRecord
from rules.shifts import SiteConfig
from rules.types import ChannelKey, Hazard, ReadingBatch, RuleKind
from storage.base import HistoryQuery, PartialWriteError, RecordKind, Rejected, Store

log = logging.getLogger(__name__)

STEL_WINDOW_S = 15 * 60.0  # the longest trailing window a rule looks back over
STORE_HEALTH_EVERY_S = 10.0  # how often the spool's disk and the store are checked


def profile_book(settings: Settings) -> ProfileBook:
    book = ProfileBook.load(extra_dirs=settings.profile_dirs)
    names = book.names()
    for name in [settings.profile, *(s.profile for s in settings.sites.values() if s.profile)]:
        if name not in names:
            raise ConfigError(f"limit profile {name!r} not found; available: {', '.join(sorted(names))}")
    return book


def site_configs(settings: Settings) -> dict[str, SiteConfig]:
    return {
        name: SiteConfig(
            name=name,
            tz=s.tz,
            shift_starts=tuple(s.shift_starts),
            shift_hours=s.shift_hours,
            profile=s.profile,
        )
        for name, s in settings.sites.items()
    }


def open_configured_store(
    settings: Settings, *, read_only: bool = False, on_rejected: Callable[[PartialWriteError], None] | None = None
) -> Store:
    from storage.factory import open_store

    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    password = settings.influx_password.get_secret_value() if settings.influx_password else None
    return open_store(
        kind=settings.store,
        sqlite_path=settings.sqlite_path,
        influx_url=settings.influx_url,
        influx_api=settings.influx_api,
        influx_db=settings.influx_db,
        influx_org=settings.influx_org,
        influx_bucket=settings.influx_bucket,
        influx_token=token,
        influx_user=settings.influx_user,
        influx_password=password,
        spool_dir=None if read_only or not settings.spool else settings.state_path / "spool",
        on_rejected=on_rejected,
        read_only=read_only,
    )


def pseudonym_key(settings: Settings) -> SecretStr:
    """The configured key, or a random one kept in state_dir (stable across runs on one host)."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key
    path = settings.state_path / "pseudonym.key"
    if not path.exists():
        private_state_dir(settings.state_path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return SecretStr(path.read_text().strip())


@dataclass
class Runtime:
    settings: Settings
    book: ProfileBook
    engine: ExposureEngine
    alerts: AlertBook
    store: Store
    health: SensorHealth
    sinks: Dispatcher
    side_events: list[AlertEvent] = field(default_factory=list)  # raised by the sinks themselves
    rejected: list[Rejected] = field(default_factory=list)  # refused by the store for good
    audit: AuditChain = field(default_factory=AuditChain)
    ckpt: Checkpoint | None = None
    coverage: CoverageWatch | None = None  # not_judged configuration alerts (gateway/coverage.py)
    pending: list[AlertEvent] = field(default_factory=list)  # raised at start-up, emitted on the first tick
    _next_health_s: float = 0.0
    _dirty: bool = field(default=False)
    _recording: threading.Lock = field(default_factory=threading.Lock)
    inventory: ChannelInventory = field(init=False)  # bounded channels per site (gateway/inventory.py)
    capacity: CapacityAlerts = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = inventory_for(self.settings, self.engine.registry)
        self.capacity = CapacityAlerts(self.inventory, self.alerts)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        book = profile_book(settings)
        engine = ExposureEngine(
            book,
            settings.profile,
            site_configs(settings),
            max_gap_s=settings.max_gap_s,
            grace_s=settings.shift_grace_s,
        )
        rejected: list[Rejected] = []
        private_state_dir(settings.state_path)  # 0700 before the spool or checkpoint writes in it
        claim_state_dir(settings.state_path, settings.store_identity)  # before the spool in it is opened
        store = open_configured_store(settings, on_rejected=lambda e: rejected.extend(e.rejected))
        ckpt = Checkpoint(settings.state_path / ALERT_CHECKPOINT, settings.store_identity)
        _warn_legacy_state_dir(settings)
        head = _ChainHead(settings.mqtt_client_id)
        alerts = load_alerts(ckpt, store, book.limits, settings.alerts.policy(), _takes_over(settings), head.add)
        health = SensorHealth(alerts, settings.health.policy())
        health.restore_status_seen((ckpt.loaded or {}).get("status_seen"))
        side: list[AlertEvent] = []
        sinks = build_dispatcher(settings.sinks, book=alerts, on_event=side.append)
        rt = cls(settings, book, engine, alerts, store, health, sinks, side, rejected, ckpt=ckpt)
        rt.audit = head.chain()
        log_site_profiles(book, settings.profile, site_configs(settings))
        rt.coverage = CoverageWatch(book, engine.profile_of)
        now = time.time()
        rt.pending = rt.coverage.reconcile(alerts, now)
        rt.rebuild_engine(now)
        return rt

    def record_events(self, events: Sequence[AlertEvent]) -> list[AlertEvent]:
        """Seal events into this gateway's audit chain and store them; returns the sealed events.

        Times are cut to whole milliseconds first, as the stores keep them, so that the stored
        row hashes to exactly what was sealed (alerts/audit.py)."""
        sealed: list[AlertEvent] = []
        with self._recording:  # ingest and tick record from worker threads: one chain, one writer
            for ev in events:
                ev = replace(ev, t_s=_ms(ev.t_s), since_s=_ms(ev.since_s), audit_chain=self.settings.mqtt_client_id)
                link = self.audit.append(ev)
                sealed.append(replace(ev, audit_seq=link.audit_seq, prev_hash=link.prev_hash, hash=link.hash))
            if sealed:
                self.store.write_alert_events(sealed)
        return sealed

    def audit_anchor(self) -> tuple[str, bytes] | None:
        """Topic and retained payload of this gateway's audit chain head (docs/security.md), or
        None before its first event: `P/gateway/audit/{chain}` `{"chain", "audit_seq", "hash", "head"}`."""
        if self.audit.next_seq == 0:
            return None
        chain, seq = self.settings.mqtt_client_id, self.audit.next_seq - 1
        doc = {"chain": chain, "audit_seq": seq, "hash": self.audit.head, "head": f"{seq}:{self.audit.head}"}
        return f"{self.settings.topic_prefix}/gateway/audit/{chain}", orjson.dumps(doc)

    def rebuild_engine(self, now_s: float) -> int:
        """Replay the running shifts' readings from the store, so a restart does not reset
        STEL/TWA/dose (SPEC §6). Conditions from the replay are dropped: the open alerts were
        rebuilt from the store's alert log and must not notify anyone twice."""
        longest_shift_s = max([s.shift_hours for s in self.settings.sites.values()] + [8.0]) * 3600.0
        since = now_s - longest_shift_s - STEL_WINDOW_S - self.settings.shift_grace_s
        keys: dict[tuple[str, str, str, str, str | None], int] = {}
        chan: list[int] = []
        t_s: list[float] = []
        value: list[float] = []
        for row in self.store.query(HistoryQuery(RecordKind.READINGS, t_from_s=since)):
            k = (row["site"], row["zone"], row["device"], row["hazard"], row["worker"] or None)
            cid = keys.get(k)
            if cid is None:
                cid = keys[k] = self.engine.registry.id_for(ChannelKey(k[0], k[1], k[2], Hazard(k[3]), k[4]))
            chan.append(cid)
            t_s.append(datetime.fromisoformat(row["t"]).timestamp())
            value.append(float(row["value"]))
        if chan:
            batch = ReadingBatch(np.array(chan, np.int64), np.array(t_s), np.array(value))
            result = self.engine.ingest(batch)
            self.health.remember(batch, self.engine.registry)  # how recent a status must be to matter
            if result.exposures:
                self.store.write_exposures(result.exposures)
            log.info("rebuilt running exposure state from %d stored readings", len(chan))
        return len(chan)

    # -- per batch --------------------------------------------------------------------------------
    def write_readings(self, batch: ReadingBatch) -> list[Rejected]:
        """Store a batch durably. Records the store refuses for good are returned (to be
        dead-lettered); everything else is stored. Other store errors propagate (no ack)."""
        try:
            self.store.write_readings(self.engine.registry.keys, batch)
        except PartialWriteError as exc:
            return list(exc.rejected)
        return []

    def take_rejected(self) -> list[Rejected]:
        """Records refused while the spool was replayed in the background."""
        out, self.rejected[:] = list(self.rejected), []
        return out

    def store_health(self, now_s: float) -> list[AlertEvent]:
        """A failing store or a filling disk is a `malfunction` alert long before data is at risk."""
        probe = getattr(self.store, "health", None)
        if probe is None or now_s < self._next_health_s:
            return []
        self._next_health_s = now_s + STORE_HEALTH_EVERY_S
        h = probe()
        subject = AlertSubject("gateway", "storage", self.settings.mqtt_client_id, "store")
        if h.ok:
            return self.alerts.clear_health(subject, RuleKind.OFFLINE, t_s=now_s, now_s=now_s,
                                            message="store and spool healthy again")  # fmt: skip
        detail = h.reason or h.store_error or "store unreachable"
        text = f"Storage problem: {detail}; {h.spool_depth} batch(es) spooled, {h.free_bytes // 2**20} MiB free"
        return self.alerts.raise_health(subject, RuleKind.OFFLINE, t_s=now_s, now_s=now_s, message=text)

    def judge(self, result: EngineResult, now_s: float) -> list[AlertEvent]:
        """Store closed-shift exposures; turn rule evaluations into alert lifecycle events."""
        if result.exposures:
            self.store.write_exposures([self._flag_faulty(r) for r in result.exposures])
        events = self.alerts.on_conditions(result.conditions, self.engine.registry, self.book.limits, now_s)
        events += self.unjudged(now_s)
        self._dirty = self._dirty or bool(events)
        return events

    def unjudged(self, now_s: float) -> list[AlertEvent]:
        """`not_judged` alerts for hazards first measured at a site whose profile has no limit for them."""
        if self.coverage is None:
            return []
        live = self.engine.live

        def t_of(channel: int) -> float:  # the channel's latest reading (its first, when new)
            return float(live["t_last"][channel]) if channel < live.size and live["has"][channel] else now_s

        return self.coverage.check(self.engine.registry, self.alerts, now_s, t_of, upto=live.size)

    def _flag_faulty(self, rec: ExposureRecord) -> ExposureRecord:
        """Mark a shift figure computed while its sensor had a malfunction alert open."""
        if rec.sensor_faulty or not self.alerts.is_faulty(rec.key, rec.shift_start_s, rec.shift_end_s):
            return rec
        return replace(rec, sensor_faulty=True)

    def health_on_batch(self, batch: Sorted, now_s: float) -> list[AlertEvent]:
        """Sensor health: status messages (and Last Wills), range, stuck values, sequence gaps."""
        events: list[AlertEvent] = []
        for topic, status, retained in batch.statuses:
            payload = status.model_dump(exclude_none=True)
            events += self.health.on_status(
                topic.site, topic.zone, topic.device, payload, now_s, now_s, retained=retained
            )
        if len(batch.readings):
            events += self.health.observe(batch.readings, self.engine.registry, now_s, batch.seq)
        self._dirty = self._dirty or bool(events) or bool(batch.statuses)
        return events

    def acknowledge(
        self,
        alert_id: str,
        by: str,
        note: str | None,
        now_s: float,
        *,
        site: str | None = None,
        at_s: float | None = None,
        ack_id: str | None = None,
    ) -> tuple[AlertEvent | None, str | None]:
        """The `acknowledged` event, or the reason it is refused (unknown, other site's, cleared
        alert; bad name or note; a duplicate) for the dead letter. See `AlertBook.acknowledge`."""
        try:
            ev = self.alerts.acknowledge(alert_id, by, note, now_s, site=site, at_s=at_s, ack_id=ack_id)
        except (UnknownAlertError, InvalidAckError) as exc:
            return None, str(exc)
        self._dirty = True
        return ev, None

    def tick_alerts(self, now_s: float) -> list[AlertEvent]:
        events, self.pending = self.pending, []
        events += self.unjudged(now_s) + self.alerts.tick(now_s) + self.health.check(now_s) + self.store_health(now_s)
        events += self.capacity.check(now_s)
        self._dirty = self._dirty or bool(events) or bool(self.side_events)
        if self._dirty:
            self.checkpoint(force=False)
        return events

    def take_side_events(self) -> list[AlertEvent]:
        """Events the dispatcher raised itself (a sink failing or working again). It has already
        queued them for the other sinks: they still need storing and the MQTT topics, not `deliver`."""
        out, self.side_events[:] = list(self.side_events), []
        return out

    def deliver(self, events: Sequence[AlertEvent]) -> None:
        """Hand events to the sinks (never blocks: each sink has its own queue and task)."""
        self.sinks.submit_many(list(events), retained=self.alerts.retained_state)

    async def run_sinks(self, stop: asyncio.Event) -> None:
        await self.sinks.run(stop)

    # -- persistence ------------------------------------------------------------------------------
    def checkpoint(self, *, force: bool = True) -> None:
        """Save the alert book's cache (gateway/checkpoint.py: fsync + rename, at most once a
        second, written by a worker thread; forced at shutdown, in the caller); the store's
        alert log stays the truth."""
        if self.ckpt is None:
            self.ckpt = Checkpoint(self.settings.state_path / ALERT_CHECKPOINT, self.settings.store_identity)
        if self.ckpt.save(self._snapshot, force=force, background=not force):
            self._dirty = False

    def _snapshot(self) -> dict[str, Any]:
        return {**self.alerts.snapshot(), "status_seen": self.health.status_seen_json()}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.checkpoint()
        if self.ckpt is not None:
            self.ckpt.close()
        self.store.close()


def _takes_over(settings: Settings) -> Callable[[Mapping[str, Any]], bool]:
    """Which stored alerts this gateway rebuilds: those of the sites it serves, and its own
    gateway-level ones (site `gateway`, in its own audit chain)."""
    served, chain = set(settings.serve_sites), settings.mqtt_client_id

    def accept(row: Any) -> bool:
        if row["site"] == "gateway":
            return bool(row.get("audit_chain") == chain)
        return not served or row["site"] in served

    return accept


def _warn_legacy_state_dir(settings: Settings) -> None:
    legacy = LEGACY_STATE_DIR.resolve()
    if settings.state_dir is None and settings.store == "influx" and legacy.is_dir():
        log.warning(
            "%s is no longer used (state now lives in %s, one directory per store): move its spool/ "
            "(unsent batches) and pseudonym.key (stable worker pseudonyms) there, or set OSH_STATE_DIR",
            legacy, settings.state_path,
        )  # fmt: skip


def describe_status(settings: Settings) -> str:
    lines = [f"store: {settings.store}" + (f" ({settings.sqlite_path})" if settings.store == "sqlite" else "")]
    data, where = _open_alerts_now(settings)
    if data is None:
        lines.append(f"open alerts: unknown ({where})")
    else:
        lines.append(f"open alerts: {len(data.get('open', []))} ({where})")
        for a in data.get("open", []):
            lines += open_alert_lines(a, width())
        unjudged = [a.get("subject") or {} for a in data.get("open", []) if a.get("rule") == RuleKind.NOT_JUDGED]
        if unjudged:
            lines.append("hazards measured but not judged (no limit in the site's profile):")
            lines += sorted(f"  {u.get('site')}: {u.get('hazard')} (profile {u.get('device')})" for u in unjudged)
    spool = settings.state_path / "spool"
    if spool.exists():
        size = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
        lines.append(f"spool: {size} bytes waiting in {spool}")
    return "\n".join(lines)


def _open_alerts_now(settings: Settings) -> tuple[dict[str, Any] | None, str]:
    """The open alerts as the store's alert log has them (the checkpoint only as a cache, or as
    the last resort when the store cannot be read), and a line saying where they come from."""
    ckpt = Checkpoint(settings.state_path / ALERT_CHECKPOINT, settings.store_identity)
    try:
        store = open_configured_store(settings, read_only=True)
    except StoreError:
        data = ckpt.read()
        if data is None:
            return None, "the store cannot be read, and there is no checkpoint of it"
        return data, "the store cannot be read: as this gateway last checkpointed them"
    # How the log and this host's checkpoint differ matters to a starting gateway, not to a reader.
    quiet = logging.getLogger("gateway.checkpoint")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        book = load_alerts(ckpt, store, profile_book(settings).limits, settings.alerts.policy(), _takes_over(settings))
    finally:
        quiet.setLevel(level)
        store.close()
    return book.snapshot(), "from the store's alert log"


def _ms(t_s: float) -> float:
    return round(t_s * 1000.0) / 1000.0


@dataclass(slots=True)
class _ChainHead:
    """Where this gateway's audit chain ends in the store, from the alert log read at start-up."""

    name: str
    seq: int = -1
    hash: str = ""

    def add(self, row: Mapping[str, Any]) -> None:
        if row.get("audit_chain") == self.name and row.get("audit_seq") is not None and row["audit_seq"] > self.seq:
            self.seq, self.hash = int(row["audit_seq"]), str(row["hash"])

    def chain(self) -> AuditChain:
        """Continue this gateway's chain where the stored events end."""
        return AuditChain() if self.seq < 0 else AuditChain(head=self.hash, next_seq=self.seq + 1)


def verify_audit_chain(settings: Settings, heads: Mapping[str | None, Anchor] | None = None) -> tuple[bool, str]:
    """Check every stored alert event against its writer's hash chain (30 CFR 75.351(o)).

    `heads` are anchored heads per chain (published on `P/gateway/audit/{chain}`, kept in a
    report or bundle); the key None means "the only chain in the store". An anchor catches
    events deleted at the end and a log rewritten up to the anchor, which the chain alone cannot.
    """
    store = open_configured_store(settings, read_only=True)
    chains: dict[str, list[dict[str, Any]]] = {}
    unsealed = 0
    try:
        for row in store.query(HistoryQuery(RecordKind.ALERTS)):
            if row.get("audit_chain") is None or row.get("hash") is None:
                unsealed += 1
            else:
                chains.setdefault(str(row["audit_chain"]), []).append(row)
    finally:
        store.close()
    anchors = _anchors_by_chain(heads or {}, sorted(chains))
    lines, ok = [], unsealed == 0
    for name in sorted(set(chains) | set(anchors)):
        result = verify_chain(chains.get(name, []), anchor=anchors.get(name))
        ok = ok and result.ok
        lines.append(f"chain {name}: {result.message()}")
    if unsealed:
        lines.append(f"{unsealed} stored alert event(s) carry no audit hash: written outside oshmon")
    if not chains and not unsealed and not anchors:
        lines.append("no alert events stored yet")
    return ok, "\n".join(lines)


def _anchors_by_chain(heads: Mapping[str | None, Anchor], stored: Sequence[str]) -> dict[str, Anchor]:
    anchors = {k: v for k, v in heads.items() if k is not None}
    if None in heads:
        if len(stored) != 1:
            names = ", ".join(stored) or "none"
            raise ConfigError(f"--head needs --chain: the store holds {len(stored)} audit chains ({names})")
        anchors.setdefault(stored[0], heads[None])
    return anchors
