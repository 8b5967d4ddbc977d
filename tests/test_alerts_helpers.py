"""Shared builders for the alert tests: limits, a registry and condition batches."""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from rules.results import ConditionBatch, Direction, Limit
from rules.types import RULE_CODE, SEVERITY_BY_CODE, ChannelKey, ChannelRegistry, Hazard, RuleKind, Severity

CO_SRC = "Directive (EU) 2017/164, Annex (CO, 15 min)"
CO_ACTION = "Leave the area; ventilate; find the source"

_UP, _DOWN, _LV = Direction.ABOVE, Direction.BELOW, RuleKind.LEVEL
LIMITS: tuple[Limit, ...] = (
    Limit("eu", Hazard.CO, RuleKind.STEL, Severity.ALARM, 100.0, "ppm", _UP, CO_SRC, CO_ACTION, "STEL"),
    Limit("eu", Hazard.CO, _LV, Severity.WARNING, 25.0, "ppm", _UP, "lvl-w", "Investigate"),
    Limit("eu", Hazard.CO, _LV, Severity.ALARM, 50.0, "ppm", _UP, "lvl-a", "Withdraw"),
    Limit("eu", Hazard.CO, _LV, Severity.CRITICAL, 200.0, "ppm", _UP, "lvl-c", "Evacuate"),
    Limit(
        "eu", Hazard.O2, RuleKind.LEVEL, Severity.ALARM, 19.5, "%vol", Direction.BELOW,
        "30 CFR 75.321(a)(1)", "Leave the area; ventilate", clear_at=20.0,
    ),
    Limit("eu", Hazard.O2, _LV, Severity.CRITICAL, 18.0, "%vol", _DOWN, "o2-c", "Evacuate"),
)  # fmt: skip
LIM = {(lim.hazard, lim.rule, lim.severity): i for i, lim in enumerate(LIMITS)}

GD17 = ChannelKey("kop-1", "north-adit", "gd-17", Hazard.CO)
OX2 = ChannelKey("kop-1", "north-adit", "ox-2", Hazard.O2)

Row = tuple[ChannelKey, RuleKind, Severity | None, float, float]  # key, rule, severity, value, t_s


def make_registry(*keys: ChannelKey) -> ChannelRegistry:
    reg = ChannelRegistry()
    for k in keys or (GD17, OX2):
        reg.id_for(k)
    return reg


def batch(registry: ChannelRegistry, rows: Sequence[Row]) -> ConditionBatch:
    """Condition rows as the engine would emit them; the limit is looked up from LIMITS."""
    ch, rule, sev, val, thr, t, lim = [], [], [], [], [], [], []
    for key, r, s, v, ts in rows:
        ch.append(registry.id_for(key))
        rule.append(RULE_CODE[r])
        sev.append(-1 if s is None else SEVERITY_BY_CODE.index(s))
        li = -1 if s is None else LIM[(key.hazard, r, s)]
        lim.append(li)
        thr.append(LIMITS[li].threshold if li >= 0 else np.nan)
        val.append(v)
        t.append(ts)
    return ConditionBatch(
        np.array(ch, np.int64), np.array(rule, np.int8), np.array(sev, np.int8), np.array(val, np.float64),
        np.array(thr, np.float64), np.array(t, np.float64), np.array(lim, np.int32),
    )  # fmt: skip


def counter_ids(prefix: str = "A") -> Callable[[], str]:
    it = itertools.count(1)
    return lambda: f"{prefix}{next(it):04d}"


# ---- a real HTTP server for webhook tests -------------------------------------------------------
class HookServer:
    """A threaded HTTP server on 127.0.0.1 recording POSTs; `statuses` are answered in turn
    (the last one repeats); `delay_s` makes it slow."""

    def __init__(self, statuses: Sequence[int] = (200,), delay_s: float = 0.0) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses = list(statuses)
        self.delay_s = delay_s
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests.append((self.path, dict(self.headers.items()), body))
                time.sleep(server.delay_s)
                status = server.statuses.pop(0) if len(server.statuses) > 1 else server.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dead_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
