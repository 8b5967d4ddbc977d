"""Backlog drain benchmark (issue 12): how fast one gateway catches up after an outage.

    .venv/bin/python -m bench.drain [--messages 50000] [--rounds 3] [--kinds single,4gas]
                                    [--stores sqlite,influx] [--update docs/benchmarks.md]

A real mosquitto (`tests.services.run_mosquitto`: persistence on, unlimited queue and in-flight
window) holds persistent QoS 1 sessions for each consumer while it is away; `--messages` messages
(one reading each, or one 4-gas instant each) from 1000 devices are published once into all of
them. Then each consumer is started in turn and timed until it has everything:

- the broker's ceiling: Debian's `mosquitto_sub -c -q 1 -C N` (C, persistent session, output
  to /dev/null), timed from its start to its exit;
- `oshmon run` with the SQLite store and with the InfluxDB 1.x store (Debian's influxd), timed
  from its "MQTT connected" log line to the moment its /metrics count all readings stored
  (polled every 100 ms); the start-up before it (Python imports, profile, store) is shown apart.

Median of `--rounds` rounds (a fresh broker each). The machine is shared: the load average is
printed with every round, and ratios are taken within one round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import machine, update_section
from tests.mqtt_helpers import ROOT, GatewayProcess
from tests.services import Influxd, Mosquitto, free_port, require, run_influxd, run_mosquitto

BEGIN, END = "<!-- drain:begin -->", "<!-- drain:end -->"
SITE = "bench-drain"
HALVES = ("a", "b")
DEVICES = 1000
GASES = (("ch4", 0.4, "%vol"), ("co", 3.0, "ppm"), ("h2s", 0.5, "ppm"), ("o2", 20.9, "%vol"))
KIND_READINGS = {"single": 1, "4gas": 4}
POLL_S = 0.1  # /metrics polling (each scrape costs the gateway a little: not more often)
_CONNECTED = re.compile(rb"^(\S+ \S+) INFO gateway\.mqtt: MQTT connected", re.M)


def payload(kind: str, i: int, t0: float) -> bytes:
    """Message i: device i % DEVICES, its (i // DEVICES)-th second; values follow a known pattern."""
    t = t0 + i // DEVICES
    if kind == "single":
        return orjson.dumps({"t": t, "hazard": "co", "value": float(i % 17), "unit": "ppm", "seq": i // DEVICES})
    rows = [{"hazard": h, "value": v, "unit": u} for h, v, u in GASES]
    return orjson.dumps({"t": t, "readings": rows, "seq": i // DEVICES})


def topic(i: int) -> str:
    """Devices 0-499 at site `bench-drain-a`, 500-999 at `bench-drain-b` (for --split)."""
    d = i % DEVICES
    return f"osh/{SITE}-{HALVES[d * 2 // DEVICES]}/z{d // 100}/dev-{d:04d}/data"


def publish(port: int, kind: str, n: int, t0: float) -> float:
    """Publish n QoS 1 messages (every PUBACK awaited: the broker holds them); seconds taken."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-drain-pub-{time.time_ns()}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    start = time.perf_counter()
    try:
        info = None
        for i in range(n):
            info = c.publish(topic(i), payload(kind, i, t0), qos=1)
        if info is not None:
            info.wait_for_publish(600)
        return time.perf_counter() - start
    finally:
        c.loop_stop()
        c.disconnect()


def sub_args(port: int, client_id: str) -> list[str]:
    sub = require("mosquitto_sub", "mosquitto-clients")
    return [sub, "-h", "127.0.0.1", "-p", str(port), "-c", "-q", "1", "-i", client_id, "-t", "osh/+/+/+/data"]


def ceiling_session(port: int, client_id: str) -> None:
    subprocess.run([*sub_args(port, client_id), "-E"], check=True, timeout=30)  # -E: exit once subscribed


def ceiling(port: int, client_id: str, n: int) -> float:
    start = time.perf_counter()
    subprocess.run([*sub_args(port, client_id), "-C", str(n)], check=True, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def gateway_env(broker: Mosquitto, tmp: Path, store: str, influx: Influxd | None, http: int) -> dict[str, str]:
    env = {
        "OSH_MQTT_URL": broker.url, "OSH_STORE": store, "OSH_SQLITE_PATH": str(tmp / f"{store}.sqlite"),
        "OSH_STATE_DIR": str(tmp / f"state-{store}"), "OSH_PROFILE": "us-msha",
        "OSH_MQTT_CLIENT_ID": f"bench-drain-{store}", "OSH_LOG_LEVEL": "INFO",
        "OSH_SINKS": '{"sinks": []}', "OSH_HEALTH": '{"default_interval_s": 3600}',
        "OSH_HTTP_LISTEN": f"127.0.0.1:{http}",
    }  # fmt: skip
    if influx is not None:
        env |= {"OSH_INFLUX_URL": influx.url, "OSH_INFLUX_DB": f"drain{time.time_ns()}"}
    return env


def stored(http: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=2) as r:
        m = re.search(rb"^oshmon_readings_stored_total (\S+)$", r.read(), re.M)
    return float(m.group(1)) if m else 0.0


@dataclass(frozen=True, slots=True)
class Drain:
    total_s: float  # process start → everything stored
    drain_s: float  # "MQTT connected" → everything stored


PROFILE = os.environ.get("OSH_BENCH_PROFILE", "")  # a directory: py-spy's raw stacks go there


def _profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy (a dev tool: `pip install py-spy`) sampling every thread of the gateway, raw stacks."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--threads", "--gil", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(raw: Path, top: int = 6) -> str:
    """Share of samples per thread; per thread the functions with the most samples (self time)
    and the product functions on the stack most often (self + children)."""
    threads: dict[str, dict[str, dict[str, int]]] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        name = re.sub(r"\s*\(\d+\)", "", frames[0]).removeprefix("thread ").strip("' :")
        t = threads.setdefault(name, {"": {"": 0}, "self": {}, "incl": {}})
        t[""][""] += n
        leaf = frames[-1].split(" (")[0]
        t["self"][leaf] = t["self"].get(leaf, 0) + n
        for fn in {f.split(" (")[0] for f in frames[1:] if "/site-packages/" not in f and "(<" not in f}:
            t["incl"][fn] = t["incl"].get(fn, 0) + n
    out = [f"{total} samples (250 Hz, only the thread holding the GIL)"]
    for name, t in sorted(threads.items(), key=lambda kv: -kv[1][""][""]):
        out.append(f"- {name}: {t[''][''] / total:.0%} of samples")
        for kind in ("self", "incl"):
            best = sorted(t[kind].items(), key=lambda kv: -kv[1])[:top]
            out.append(f"  {kind}: " + ", ".join(f"{fn} {n / total:.1%}" for fn, n in best))
    return "\n".join(out)


def launch(gw: GatewayProcess) -> None:
    """As GatewayProcess.start, without its readiness probe messages (they would join the backlog)."""
    gw._log_file = gw.log.open("ab")
    gw.proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run"], cwd=ROOT, env=gw.env, stdout=gw._log_file,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_stored(gw: GatewayProcess, http: int, readings: int, start: float) -> float:
    """Poll the gateway's /metrics until `readings` are stored; the time then."""
    assert gw.proc is not None
    while True:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}: {gw.tail()}")
        with contextlib.suppress(OSError):
            if stored(http) >= readings:
                return time.time()
        if time.time() - start > 600:
            raise TimeoutError(f"gateway did not store {readings} readings in 600 s: {gw.tail()}")
        time.sleep(POLL_S)


def connected_at(gw: GatewayProcess) -> float:
    found = _CONNECTED.findall(gw.log.read_bytes())
    return datetime.strptime(found[-1].decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def drain(gw: GatewayProcess, http: int, readings: int) -> Drain:
    start = time.time()
    launch(gw)
    assert gw.proc is not None
    spy_out = Path(PROFILE) / f"{gw.log.stem}-{time.time_ns()}.txt"
    spy = _profile(gw.proc.pid, spy_out) if PROFILE else None
    done = wait_stored(gw, http, readings, start)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled so far
        spy.wait(60)
        print(summarize(spy_out), flush=True)
    return Drain(done - start, done - connected_at(gw))


def split_round(kind: str, n: int, influx: Influxd) -> dict[str, float]:
    """Two gateways (InfluxDB) splitting the sites, started together: aggregate messages/s."""
    with run_mosquitto() as broker, tempfile.TemporaryDirectory(prefix="osh-bench-split-") as tmp_s:
        tmp = Path(tmp_s)
        pair = []
        for half in HALVES:
            http = free_port()
            env = gateway_env(broker, tmp, "influx", influx, http) | {
                "OSH_SERVE_SITES": f"{SITE}-{half},probe", "OSH_MQTT_CLIENT_ID": f"bench-drain-{half}",
                "OSH_STATE_DIR": str(tmp / f"state-{half}"),
            }  # fmt: skip
            gw = GatewayProcess(env, tmp / f"{half}.log")
            gw.start(broker.port).stop()
            pair.append((gw, http))
        publish(broker.port, kind, n, time.time() - 3600.0)
        start = time.time()
        try:
            for gw, _ in pair:
                launch(gw)
            done = max(wait_stored(gw, http, n // 2 * KIND_READINGS[kind], start) for gw, http in pair)
        finally:
            for gw, _ in pair:
                gw.stop()
        first = min(connected_at(gw) for gw, _ in pair)
    return {"split": n / (done - first), "split total": n / (done - start), "load": os.getloadavg()[0]}


def one_round(kind: str, n: int, stores: list[str], influx: Influxd | None) -> dict[str, float]:
    """Messages/s per consumer ('ceiling', 'sqlite', 'influx', and '<store> total') in one round."""
    out: dict[str, float] = {}
    with run_mosquitto() as broker, tempfile.TemporaryDirectory(prefix="osh-bench-drain-") as tmp_s:
        tmp = Path(tmp_s)
        gws = {}
        for store in stores:
            http = free_port()
            env = gateway_env(broker, tmp, store, influx if store == "influx" else None, http)
            gw = GatewayProcess(env, tmp / f"{store}.log")
            gw.start(broker.port).stop()  # its persistent session exists now
            gws[store] = (gw, http)
        sub_id = f"bench-drain-sub-{time.time_ns()}"
        ceiling_session(broker.port, sub_id)
        pub_s = publish(broker.port, kind, n, time.time() - 3600.0)
        out["publish"] = n / pub_s
        out["ceiling"] = n / ceiling(broker.port, sub_id, n)
        for store, (gw, http) in gws.items():
            try:
                d = drain(gw, http, n * KIND_READINGS[kind])
            finally:
                gw.stop()
            out[store], out[f"{store} total"] = n / d.drain_s, n / d.total_s
    out["load"] = os.getloadavg()[0]
    return out


def table(kind: str, rounds: list[dict[str, float]], stores: list[str]) -> list[str]:
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    rows = [f"| {kind} | `mosquitto_sub` (broker ceiling) | {med['ceiling']:,.0f} | 1.00 | – |"]
    for store in stores:
        ratio = statistics.median(r[store] / r["ceiling"] for r in rounds)
        rows.append(
            f"| {kind} | `oshmon run`, {store} | {med[store]:,.0f} | {ratio:.2f} | {med[f'{store} total']:,.0f} |"
        )
    return rows


def split_row(kind: str, rounds: list[dict[str, float]]) -> str:
    for r in rounds:
        print(f"{kind} split: " + ", ".join(f"{a} {b:,.1f}" for a, b in r.items()), flush=True)
    med = {k: statistics.median(r[k] for r in rounds) for k in ("split", "split total")}
    who = "two `oshmon run`, influx, half the sites each (aggregate)"
    return f"| {kind} | {who} | {med['split']:,.0f} | | {med['split total']:,.0f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="single,4gas")
    parser.add_argument("--stores", default="sqlite,influx")
    parser.add_argument("--split", action="store_true", help="also two gateways splitting the sites (InfluxDB)")
    parser.add_argument("--update", type=Path, help="replace the drain section of this Markdown file")
    args = parser.parse_args(argv)
    stores, kinds = args.stores.split(","), args.kinds.split(",")
    rows: list[str] = []
    loads: list[float] = []
    with ExitStack() as stack:
        influx = stack.enter_context(run_influxd()) if "influx" in stores else None
        for kind in kinds:
            rounds = []
            for k in range(args.rounds):
                r = one_round(kind, args.messages, stores, influx)
                print(f"{kind} round {k + 1}: " + ", ".join(f"{a} {b:,.1f}" for a, b in r.items()), flush=True)
                rounds.append(r)
                loads.append(r["load"])
            rows += table(kind, rounds, stores)
            if args.split and influx is not None:
                rows.append(split_row(kind, [split_round(kind, args.messages, influx) for _ in range(args.rounds)]))
    section = report(args, rows, loads)
    print(section)
    if args.update:
        update_section(args.update, BEGIN, END, section)
    return 0


def report(args: argparse.Namespace, rows: list[str], loads: list[float]) -> str:
    return (
        f"{BEGIN}\n## Backlog drain (one-reading messages, issue 12)\n\n"
        f"Command: `.venv/bin/python -m bench.drain --messages {args.messages} --rounds {args.rounds} "
        f"--kinds {args.kinds} --stores {args.stores}{' --split' if args.split else ''}` "
        f"({date.today().isoformat()}).\n"
        f"Machine: {machine()}; load average after each round: {', '.join(f'{x:.1f}' for x in loads)}.\n\n"
        f"{args.messages:,} QoS 1 messages from {DEVICES} devices queued by mosquitto for each consumer's\n"
        "persistent session while it was stopped; then each consumer started and timed until it had all\n"
        'of them (the gateway: from its "MQTT connected" log line until /metrics counts every reading\n'
        "stored; *incl. start* adds its start-up: Python, profile, store). Median of the rounds; the\n"
        "ratio is taken within each round, then the median.\n\n"
        "| payload | consumer | messages/s | × ceiling | messages/s incl. start |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n{END}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
