"""The demo's MQTT broker, in its own process: mosquitto when it is installed, else amqtt.

Why not the embedded broker on the demo's own event loop (as before): amqtt is pure Python, and
on the 2-core machines this project targets it carried about 1,000 messages/s (bench/demo_path.py,
docs/benchmarks.md) while also sharing its loop with the gateway, the sensors and the alert
watcher; when it fell behind, the whole demo fell behind. In its own process it gets its own
core. mosquitto (C) is several times faster still, so it is used when present (Debian's
`mosquitto` package; `make test` installs it). Nothing needs installing either way.

    async with DemoBroker() as broker:   # broker.url = "mqtt://127.0.0.1:PORT", broker.kind
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.children import die_with_parent
from rules.errors import ConfigError

START_TIMEOUT_S = 20.0
#: The settings of deploy/mosquitto.conf that matter for a gateway with manual acks: a large
#: in-flight window towards the gateway, and no silent dropping of queued QoS 1 messages.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
user {user}
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 1000000
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
"""


def find_mosquitto() -> str | None:
    """mosquitto on PATH, or where Debian puts it (/usr/sbin is not on a normal user's PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoBroker:
    """A broker subprocess on a free loopback port; `prefer` "auto", "mosquitto" or "amqtt"."""

    def __init__(self, prefer: str = "auto") -> None:
        if prefer not in ("auto", "mosquitto", "amqtt"):
            raise ConfigError(f"broker must be auto, mosquitto or amqtt, got {prefer!r}")
        self._prefer = prefer
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0
        self.kind = ""

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self, port: int, workdir: Path) -> list[str]:
        mosquitto = find_mosquitto() if self._prefer in ("auto", "mosquitto") else None
        if self._prefer == "mosquitto" and mosquitto is None:
            raise ConfigError("mosquitto not found: install Debian's `mosquitto` package or use --broker amqtt")
        if mosquitto is not None:
            conf = workdir / "mosquitto.conf"
            # keep the starting user: a user change would drop the die-with-the-demo setting
            conf.write_text(MOSQUITTO_CONF.format(port=port, user=getpass.getuser()))
            self.kind = f"mosquitto ({mosquitto})"
            return [mosquitto, "-c", str(conf)]
        self.kind = "amqtt (embedded, own process)"
        return [sys.executable, "-m", "gateway.broker", str(port)]

    async def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="oshmon-demo-broker-")
        workdir = Path(self._dir.name)
        self.port = free_port()
        cmd = self._command(self.port, workdir)
        with (workdir / "broker.log").open("wb") as log:  # the child keeps its own copy
            self._proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=log, stderr=asyncio.subprocess.STDOUT, preexec_fn=die_with_parent
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                break
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                await w.wait_closed()
                return
            await asyncio.sleep(0.05)
        tail = (workdir / "broker.log").read_text(errors="replace")[-500:].strip()
        await self.stop()
        raise ConfigError(f"the demo's MQTT broker ({self.kind}) did not start: {tail or 'no output'}")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
