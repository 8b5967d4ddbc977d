"""`oshmon ack`: acknowledge an alert through the gateway, and say exactly what happened.

Four outcomes, each one line: confirmed (the gateway's `acknowledged` event was seen), already
acknowledged (the gateway or the store shows the same acknowledgement: nothing changes),
refused (the gateway's dead letter gives the reason; exit 2), or queued: the broker accepted it
for the gateway's persistent session but the gateway did not answer in time, so it will apply
when the gateway returns, stamped with the time given here (the `t` of the ack message,
docs/spec-changes.md), never with the time it is processed. A broker that cannot be reached is
one line and exit 1: nothing was sent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import typer

from alerts.acks import clean_ack
from alerts.errors import InvalidAckError
from alerts.ids import new_alert_id
from alerts.types import rfc3339
from gateway.cli_opts import ConfigOpt
from gateway.config import Settings, load_settings, parse_mqtt_url
from gateway.mqtt import MqttEdge
from gateway.runtime import open_configured_store
from rules.errors import ConfigError, OshError, StoreError
from storage.base import HistoryQuery, RecordKind

ACK_CONFIRM_S = 10.0  # default wait for the gateway's `acknowledged` event
ACK_CONNECT_S = 5.0  # a broker that does not answer in this time is unreachable
SUBSCRIBE_SETTLE_S = 0.2  # let the subscriptions settle before publishing


@dataclass(slots=True)
class Known:
    """What the store says about one alert: its site and where its lifecycle stands."""

    site: str
    last_event: str = ""
    last_t: str = ""
    acked_by: str | None = None
    ack_note: str | None = None
    acked_t: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    site: str
    alert_id: str
    by: str
    note: str | None
    t_s: float
    ack_id: str

    def payload(self) -> bytes:
        body = {"alert_id": self.alert_id, "by": self.by, "note": self.note, "t": self.t_s, "ack_id": self.ack_id}
        return orjson.dumps(body)


def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (from the alert event or `history`).")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges (name or role).")],
    note: Annotated[str | None, typer.Option("--note", help="Cause found / action taken.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the gateway's confirmation.", min=0.5)] = (
        ACK_CONFIRM_S
    ),
    site: Annotated[
        str | None, typer.Option(help="The alert's site: lets the ack go out while the store cannot be read.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Acknowledge an alert through the running gateway and wait for its confirmation."""
    try:
        name, text = clean_ack(by, note)
    except InvalidAckError as exc:
        raise ConfigError(str(exc)) from None
    settings = load_settings(config)
    known = _known(settings, alert_id, site)
    if known.last_event == "cleared":
        raise ConfigError(f"alert {alert_id} was cleared at {known.last_t}: there is nothing to acknowledge")
    if known.acked_by is not None and (known.acked_by, known.ack_note) == (name, text):
        typer.echo(f"already acknowledged: {alert_id} by {name} at {known.acked_t}; nothing sent")
        return
    req = Request(known.site, alert_id, name, text, round(time.time(), 3), new_alert_id())
    outcome, detail = asyncio.run(_send(settings, req, wait))
    if outcome == "confirmed":
        ev = detail
        typer.echo(
            f"acknowledged {alert_id} ({ev.get('severity')} {ev.get('rule')} {ev.get('hazard')} at "
            f"{ev.get('device')}) by {name} at {ev.get('t')}"
        )
    elif outcome == "duplicate":
        typer.echo(f"already acknowledged: {detail.get('error')}")
    else:
        typer.echo(
            f"queued: the broker holds this acknowledgement for the gateway, which did not confirm it within "
            f"{wait:g} s (is `oshmon run` running?); it applies when the gateway returns, stamped "
            f"{rfc3339(req.t_s)}, the time of this acknowledgement. Do not acknowledge again."
        )


def _known(settings: Settings, alert_id: str, site: str | None) -> Known:
    """The store's view of the alert; with `--site`, a store that cannot be read is only a warning
    (the gateway still checks the ack: unknown, other-site and cleared alerts are refused)."""
    try:
        known = _look_up(settings, alert_id)
    except StoreError as exc:
        if site is None:
            raise StoreError(f"{exc} (with --site SITE the ack is sent unchecked)", retryable=False) from None
        typer.echo(f"oshmon: warning: {exc}; sending the ack to site {site} unchecked", err=True)
        return Known(site)
    if site is not None and site != known.site:
        raise ConfigError(f"alert {alert_id} is an alert of site {known.site!r}, not {site!r}")
    return known


def _look_up(settings: Settings, alert_id: str) -> Known:
    store = open_configured_store(settings, read_only=True)
    known: Known | None = None
    try:
        for row in store.query(HistoryQuery(RecordKind.ALERTS)):  # streamed: no list of every alert
            if row["alert_id"] != alert_id:
                continue
            known = known or Known(str(row["site"]))
            known.last_event, known.last_t = str(row["event"]), str(row["t"])
            if row["event"] == "acknowledged":
                known.acked_by, known.ack_note, known.acked_t = row["by"], row["note"], str(row["t"])
            elif row["event"] == "raised":  # a raise (a new tier too) asks for a new acknowledgement
                known.acked_by = known.ack_note = None
    finally:
        store.close()
    if known is None:
        raise ConfigError(f"unknown alert id {alert_id!r}: list alerts with `oshmon history --kind alerts`")
    return known


async def _send(settings: Settings, req: Request, wait_s: float) -> tuple[str, dict[str, Any]]:
    p = settings.topic_prefix
    edge = MqttEdge(
        parse_mqtt_url(settings.mqtt_url),
        f"oshmon-ack-{time.time_ns()}"[:64],
        subscriptions=[f"{p}/{req.site}/alerts", f"{p}/deadletter"],
        persistent=False,
        manual_ack=False,
        connect_timeout_s=ACK_CONNECT_S,
    )
    try:
        await edge.__aenter__()
    except ConnectionError as exc:
        raise ConnectionError(f"{exc}: the acknowledgement was not sent") from None
    try:
        await asyncio.sleep(SUBSCRIBE_SETTLE_S)
        await edge.publish(f"{p}/{req.site}/ack", req.payload(), qos=1)  # PUBACK: the broker holds it
        return await _answer(edge, f"{p}/{req.site}/ack", req, wait_s)
    finally:
        await edge.__aexit__(None, None, None)


async def _answer(edge: MqttEdge, ack_topic: str, req: Request, wait_s: float) -> tuple[str, dict[str, Any]]:
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(edge.messages.get(), left)
        except TimeoutError:
            break
        try:
            body = orjson.loads(msg.payload) if msg.payload else {}
        except orjson.JSONDecodeError:
            continue
        if not isinstance(body, dict):
            continue
        if msg.topic.endswith("/deadletter"):
            if body.get("topic") == ack_topic and req.ack_id in str(body.get("payload")):
                if str(body.get("error", "")).startswith("duplicate acknowledgement"):
                    return "duplicate", body
                raise OshError(f"the gateway refused the acknowledgement: {body.get('error')}")
        elif body.get("alert_id") == req.alert_id and body.get("event") == "acknowledged" and body.get("by") == req.by:
            return "confirmed", body
    return "queued", {}
