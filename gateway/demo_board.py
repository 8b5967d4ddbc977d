"""The control-room board during `oshmon demo`: its own process (niced, so it never slows the
demo's gateway), reading the demo's store and broker, with a demo officer whose password is
printed. `oshmon demo --stay` keeps broker, gateway and board running until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from board.users import Role, UsersFile
from gateway.children import die_with_parent
from gateway.config import Settings

DEMO_USER = "demo-officer"
PREFERRED_PORT = 8080  # the board's default (OSH_BOARD_LISTEN); any free port when it is taken
BOARD_NICENESS = 10


@dataclass
class DemoBoard:
    url: str
    user: str
    password: str
    proc: subprocess.Popen[bytes]

    def hint(self) -> str:
        return (f"[bold]Control-room board:[/] {self.url}  (sign in as [bold]{self.user}[/], password "
                f"[bold]{self.password}[/]; it runs while the demo runs, `--stay` keeps it open)")  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _port() -> int:
    for port in (PREFERRED_PORT, 0):
        with contextlib.suppress(OSError), socket.socket() as s:
            s.bind(("127.0.0.1", port))
            return int(s.getsockname()[1])
    raise OSError("no free port for the board")


def _nice() -> None:
    """In the board's process before it starts: lower priority, and die with the demo."""
    die_with_parent(BOARD_NICENESS)


def start_board(settings: Settings, out: Path) -> DemoBoard:
    """Create the demo officer (a fresh random password each run) and start `oshmon board`."""
    users = out / "board-users.json"
    password = secrets.token_urlsafe(9)
    UsersFile(users).add(DEMO_USER, password, Role.OFFICER)
    port = _port()
    env = {
        **os.environ,
        "OSH_MQTT_URL": settings.mqtt_url,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(settings.sqlite_path),
        "OSH_STATE_DIR": str(settings.state_path),
        "OSH_PROFILE": settings.profile,
        "OSH_TOPIC_PREFIX": settings.topic_prefix,
        "OSH_BOARD_LISTEN": f"127.0.0.1:{port}",
        "OSH_BOARD_USERS": str(users),
        "OSH_BOARD_REFRESH_S": "10",
        "OSH_LOG_LEVEL": "WARNING",
    }
    with (out / "board.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "board"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_nice)  # fmt: skip
    return DemoBoard(f"http://127.0.0.1:{port}", DEMO_USER, password, proc)
