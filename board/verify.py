"""Is an event on `P/{site}/alerts` really the gateway's? The board asks the store.

`alerts.signed.is_signed_by_gateway` needs the gateway's own record of the chain position an
event names: the store, which only the gateway writes (the gateway stores an event before it
publishes it). Checked in a thread, off the event loop; until the answer is in, the event shows
as not yet checked, then as signed or "Unverified" with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from alerts.signed import unsigned_reason
from storage.base import HistoryQuery, RecordKind, Store

log = logging.getLogger(__name__)
RETRY_S = 2.0  # an event may be published a moment before the store's write is visible to readers
QUEUE_MAX = 10_000  # events waiting for their check; beyond it they stay "not checked" (a storm)


class EventVerifier:
    def __init__(self, open_store: Callable[[], Store], on_result: Callable[[], None]) -> None:
        self._open_store = open_store
        self._on_result = on_result
        self._store: Store | None = None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)

    def submit(self, event: dict[str, Any]) -> None:
        """Called on the event loop for every live event; `event["signed"]` is filled in later."""
        event["signed"] = None
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(event)

    async def run(self, stop: asyncio.Event) -> None:
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        while True:
            await asyncio.wait([getter, stopper], return_when=asyncio.FIRST_COMPLETED)
            if stopper.done():
                getter.cancel()
                break
            event = getter.result()
            getter = asyncio.ensure_future(self._queue.get())
            reason = await asyncio.to_thread(self.check, event)
            if reason.startswith("audit_seq") and "never published" in reason:
                await asyncio.sleep(RETRY_S)
                reason = await asyncio.to_thread(self.check, event)
            event["signed"], event["unsigned_reason"] = not reason, reason or None
            self._on_result()
        await asyncio.to_thread(self.close)

    def check(self, event: dict[str, Any]) -> str:
        """ "" when the gateway sealed and stored this event, else why not."""
        return unsigned_reason(event, lambda chain, seq: self._stored_hash(event, chain, seq))

    def _stored_hash(self, event: dict[str, Any], chain: str, seq: int) -> str | None:
        try:
            t_s = datetime.fromisoformat(str(event.get("t")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
        q = HistoryQuery(RecordKind.ALERTS, site=str(event.get("site")), device=str(event.get("device")),
                         t_from_s=t_s - 0.001, t_to_s=t_s + 0.002)  # fmt: skip
        try:
            if self._store is None:
                self._store = self._open_store()
            rows = list(self._store.query(q))
        except Exception as exc:  # the store is down: cannot say it is the gateway's
            log.warning("board: cannot check an alert event against the store: %s", exc)
            self.close()
            return None
        for row in rows:
            if row.get("audit_chain") == chain and row.get("audit_seq") == seq:
                return str(row.get("hash"))
        return None

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None
