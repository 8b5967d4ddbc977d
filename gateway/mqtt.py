"""The MQTT edge: the one module that talks to paho-mqtt (tech-notes §2).

paho runs its network loop in its own thread and reconnects by itself with capped backoff.
Inbound messages are handed to asyncio through an unbounded `Inbox`: paho's thread appends to a
deque and wakes the event loop once per burst (one `call_soon_threadsafe` when the inbox goes
from empty to non-empty, not one per message); the loop takes whatever is waiting at once. With `manual_ack=True` the
PUBACK is sent only when the gateway calls `ack()` after the reading is durable (SPEC §6). The
broker's in-flight window is then the flow control: it stops sending when too much is unacked.
Acks are tied to the connection they arrived on: after a reconnect the broker redelivers what
was not acknowledged, and a stale packet id is never acknowledged on the new connection.

Outgoing messages are bounded (`window`): every publish first takes a slot, and the slot is
given back when paho reports the message done (PUBACK for QoS 1). A fast publisher therefore
waits for the broker instead of growing paho's unbounded queue until its 16-bit packet ids run
out (paho then answers "Message queue full"). While the connection is down, QoS 1 messages wait
in paho and are resent on reconnect; publishers wait for their slots meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.codec import MAX_PAYLOAD_BYTES
from gateway.config import MqttTarget
from rules.errors import OshError

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1  # first retry after a lost connection
RECONNECT_MAX_S = 30  # cap of paho's doubling backoff
CONNECT_TIMEOUT_S = 15.0
CLIENT_INFLIGHT = 1000  # our own QoS 1 publishes in flight (paho's default of 20 throttles alerts)
OVERSIZE_HEAD_BYTES = 1024  # what is kept of a payload over the SPEC limit: enough for the dead letter

_PUBACK = struct.Struct("!BBH")  # MQTT 3.1.1 §3.4: type 4 (0x40), remaining length 2, packet id

#: Messages handed to paho and not yet done (PUBACKed) at once. Well below paho's 65,535 packet
#: ids; above CLIENT_INFLIGHT so paho always has the next messages ready to send.
OUTGOING_WINDOW = 4000


class PublishError(OshError, ConnectionError):
    """paho refused a message (not a lost connection: paho keeps QoS 1 messages and resends them)."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int  # connection the message arrived on (acks are only valid on it)
    received_s: float
    oversize_bytes: int = 0  # > 0: the payload was over the SPEC limit; `payload` holds only its head


class Inbox:
    """Unbounded hand-off from paho's thread to the event loop, woken once per burst.

    `put_threadsafe` (any thread) appends; it wakes the loop (`call_soon_threadsafe`) only when
    a reader is blocked in `wait` on an empty inbox, so while the gateway is busy with a batch,
    arrivals cost a deque append and no loop wake-up at all. The loop side reads like an
    `asyncio.Queue` (`get`, `get_nowait`, `qsize`, `empty`) or takes what is waiting at once
    (`take`). Order is arrival order; nothing is ever dropped."""

    def __init__(self) -> None:
        self._items: deque[InboundMessage] = deque()
        self._lock = threading.Lock()
        self._waiting = False  # a reader sleeps in wait(): the next arrival must wake the loop
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wakeups = 0  # loop wake-ups from other threads so far (asyncio thread)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def put_threadsafe(self, msg: InboundMessage) -> None:
        with self._lock:
            self._items.append(msg)
            if not self._waiting:
                return
            self._waiting = False
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def put_nowait(self, msg: InboundMessage) -> None:
        """From the event loop's own thread (tests, re-queueing)."""
        with self._lock:
            self._items.append(msg)
            self._waiting = False
        self._ready.set()

    def _wake(self) -> None:
        self.wakeups += 1
        self._ready.set()

    async def wait(self) -> None:
        """Until at least one message is waiting."""
        while True:
            with self._lock:
                if self._items:
                    return
                self._waiting = True
                self._ready.clear()
            await self._ready.wait()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> InboundMessage:
        try:
            return self._items.popleft()
        except IndexError:
            raise asyncio.QueueEmpty from None

    async def get(self) -> InboundMessage:
        while True:
            await self.wait()
            with contextlib.suppress(IndexError):  # another reader may have taken it first
                return self._items.popleft()

    def take(self, limit: int) -> list[InboundMessage]:
        """Up to `limit` waiting messages, oldest first (empty when none waits)."""
        items = self._items
        n = min(limit, len(items))
        return [items.popleft() for _ in range(n)]


class MqttEdge:
    """One MQTT connection. `async with MqttEdge(...) as edge:` then read `edge.messages`."""

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        *,
        subscriptions: list[str] | None = None,
        persistent: bool = True,
        manual_ack: bool = True,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        window: int = OUTGOING_WINDOW,
    ) -> None:
        if not 0 < window < 65535:
            raise ValueError(f"window must be 1..65534 messages, got {window}")
        self._target = target
        self._subscriptions = subscriptions or []
        self._connect_timeout_s = connect_timeout_s
        self.messages = Inbox()  # unbounded: never drop
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            manual_ack=manual_ack,
        )
        self._manual_ack = manual_ack
        self._client.max_inflight_messages_set(CLIENT_INFLIGHT)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if target.username:
            pw = target.password.get_secret_value() if target.password else None
            self._client.username_pw_set(target.username, pw)
        if target.tls:
            self._client.tls_set_context(ssl.create_default_context())
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_socket_open = _no_delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._generation = 0
        self._lock = threading.RLock()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()
        self._ignore: set[int] = set()  # send(): nobody waits for these
        self._window = window
        self._slots = asyncio.Semaphore(window)  # back-pressure: one slot per message paho holds
        self._outstanding = 0  # asyncio thread only
        self._idle = asyncio.Event()
        self._idle.set()
        self.connect_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> MqttEdge:
        self._loop = asyncio.get_running_loop()
        self.messages.bind(self._loop)
        self._client.connect_async(self._target.host, self._target.port, keepalive=30)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout_s)
        except TimeoutError:
            self._client.loop_stop()
            reason = self.connect_error or "no answer"
            raise ConnectionError(
                f"cannot connect to the MQTT broker at {self._target.host}:{self._target.port} ({reason})"
            ) from None
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._client.disconnect)
        await asyncio.to_thread(self._client.loop_stop)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def session(self) -> int | None:
        """An id of the current connection (None while disconnected): it changes on every reconnect."""
        return self._generation if self._connected.is_set() else None

    # -- paho callbacks (paho's thread) -----------------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            self.connect_error = str(rc)
            log.error("MQTT connection refused: %s", rc)
            return
        with self._lock:
            self._generation += 1
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        log.info("MQTT connected (session present: %s)", flags.session_present)
        self._call(self._connected.set)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self._generation += 1
        self._call(self._connected.clear)
        if rc.value != 0:
            log.warning("MQTT connection lost (%s); paho reconnects with backoff", rc)

    def _on_message(self, _c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        size = len(m.payload)
        if size > MAX_PAYLOAD_BYTES:  # never queue or parse it: keep the head for the dead letter
            head = bytes(m.payload[:OVERSIZE_HEAD_BYTES])
            msg = InboundMessage(m.topic, head, m.qos, bool(m.retain), m.mid, self._generation, time.time(), size)
        else:
            msg = InboundMessage(m.topic, bytes(m.payload), m.qos, bool(m.retain), m.mid, self._generation, time.time())
        self.messages.put_threadsafe(msg)

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:
        self._call(self._release)
        with self._lock:
            fut = self._pending.pop(mid, None)
            if fut is None:
                if mid in self._ignore:
                    self._ignore.discard(mid)
                else:  # acknowledged before publish() could register it
                    self._early.add(mid)
                return
        self._call(_resolve, fut)

    def _track(self, mid: int, fut: asyncio.Future[None] | None) -> None:
        """Tie a packet id to its waiter (or to nobody); every entry is removed again on PUBACK."""
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
                if fut is not None:
                    fut.set_result(None)
            elif fut is not None:
                self._pending[mid] = fut
            else:
                self._ignore.add(mid)

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    # -- API (asyncio thread) ---------------------------------------------------------------------
    def ack(self, msg: InboundMessage) -> None:
        """PUBACK one message, if it arrived on the current connection (else the broker resends)."""
        if self._manual_ack and msg.qos > 0 and msg.generation == self._generation:
            self._client.ack(msg.mid, msg.qos)

    def ack_many(self, msgs: list[InboundMessage]) -> None:
        """PUBACK a batch: one write of all the QoS 1 PUBACK packets that arrived on the current
        connection, instead of one paho packet (a wake-up of its thread and a socket write) each."""
        if not self._manual_ack:
            return
        gen = self._generation
        mids = [m.mid for m in msgs if m.qos == 1 and m.generation == gen]
        queue = getattr(self._client, "_packet_queue", None)  # paho's packet queue (2.x)
        if queue is None or len(mids) < 2:
            for m in msgs:
                self.ack(m)
            return
        queue(paho.PUBACK, b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids]), 0, 0)
        for m in msgs:
            if m.qos == 2:
                self.ack(m)

    @property
    def outstanding(self) -> int:
        """Messages handed to paho and not done yet (QoS 1: not PUBACKed)."""
        return self._outstanding

    async def send(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Hand a message to paho without waiting for its PUBACK; waits while `window` messages
        are outstanding (back-pressure). paho resends QoS 1 messages after a reconnect."""
        mid = await self._hand_over(topic, payload, qos, retain)
        self._track(mid, None)

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, wait_s: float = 30.0
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1) or the write (QoS 0).

        `wait_s` bounds the wait for the PUBACK, not the wait for a slot in the window."""
        assert self._loop is not None, "use MqttEdge as an async context manager"
        fut: asyncio.Future[None] = self._loop.create_future()
        mid = await self._hand_over(topic, payload, qos, retain)
        self._track(mid, fut)
        await asyncio.wait_for(fut, wait_s)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait until every message handed over so far is done (TimeoutError after `timeout_s`)."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def _hand_over(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        await self._slots.acquire()
        self._outstanding += 1
        self._idle.clear()
        # Never hold our lock while calling paho: its network thread holds paho's own lock when it
        # calls on_publish, which takes ours (lock-order inversion = deadlock under fast PUBACKs).
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:  # paho's checks: topic wildcards, payload size, QoS
            self._release()
            raise PublishError(f"MQTT publish to {topic!r} refused: {exc}") from None
        if info.rc == paho.MQTT_ERR_NO_CONN and qos > 0:
            return info.mid  # kept by paho and sent on reconnect: the slot stays taken until then
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self._release()  # paho keeps nothing: on_publish will never come for it
            raise PublishError(f"MQTT publish to {topic!r} failed: {paho.error_string(info.rc)}")
        return info.mid

    def _release(self) -> None:
        self._outstanding -= 1
        self._slots.release()
        if self._outstanding == 0:
            self._idle.set()


def _no_delay(_c: paho.Client, _u: Any, sock: Any) -> None:
    """Send each MQTT packet at once (TCP_NODELAY). With Nagle's algorithm a PUBLISH written right
    after a PUBACK waits for the broker's delayed ACK of it: up to 40 ms added to every alert."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# -- async watchers (aiomqtt) ---------------------------------------------------------------------
# The board and other async consumers need no manual acknowledgement and no persistent session:
# aiomqtt's `async for` over a connection is the simpler tool there (tech-notes §1). Its incoming
# queue stays unbounded (max_queued_incoming_messages=0: a bound would drop messages, §1.4).


class MqttWatch:
    """Subscribe to `topics` and hand every message to `on_message(topic, payload, retained)`;
    reconnects by itself with capped jittered backoff, telling `on_connection(up)` each time the
    session comes or goes (a new session redelivers retained messages: callers resynchronise)."""

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        topics: list[str],
        on_message: Callable[[str, bytes, bool], None],
        on_connection: Callable[[bool], None],
    ) -> None:
        self._target = target
        self._client_id = client_id
        self._topics = topics
        self._on_message = on_message
        self._on_connection = on_connection
        self._client: aiomqtt.Client | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def run(self, stop: asyncio.Event) -> None:
        delay = float(RECONNECT_MIN_S)
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = float(RECONNECT_MIN_S)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT (%s): %s; retrying in %.0f s", self._client_id, exc, delay)
            self._client = None
            self._on_connection(False)
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _session(self, stop: asyncio.Event) -> None:
        t = self._target
        password = t.password.get_secret_value() if t.password else None
        async with aiomqtt.Client(
            t.host, t.port, identifier=self._client_id, username=t.username, password=password,
            tls_context=ssl.create_default_context() if t.tls else None, keepalive=30,
            max_queued_incoming_messages=0,
        ) as client:  # fmt: skip
            for topic in self._topics:
                await client.subscribe(topic, qos=1)
            self._client = client
            self._on_connection(True)
            messages = asyncio.ensure_future(self._pump(client))
            await asyncio.wait([messages, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            messages.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await messages

    async def _pump(self, client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload or "").encode()
            self._on_message(str(m.topic), payload, bool(m.retain))

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish on the current session; ConnectionError when there is none."""
        client = self._client
        if client is None:
            raise ConnectionError("not connected to the MQTT broker")
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            raise ConnectionError(f"MQTT publish to {topic!r} failed: {exc}") from None
