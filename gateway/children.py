"""Helper processes of `oshmon demo` (broker, board) never outlive it.

`die_with_parent` runs in the child before it execs: Linux's PR_SET_PDEATHSIG sends it SIGTERM
when the demo ends in any way — Ctrl-C, SIGTERM, even SIGKILL — so no broker or board is left
holding a port. (The kernel drops the setting when a process changes its user, so the demo's
mosquitto is told to keep the user it was started as.)"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(niceness: int = 0) -> None:
    if niceness:
        os.nice(niceness)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
