"""What every benchmark shares: the machine it ran on, and its own section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def uname() -> str:
    return subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> str:
    """One Markdown line: kernel, cores, CPU, Python (these machines are shared: see load average)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"`{uname()}`; nproc {os.cpu_count()}; CPU {cpu_model()}; Python {platform.python_version()}; "
        f"load average {load:.2f} at the end"
    )


def update_section(doc: Path, begin: str, end: str, section: str) -> None:
    """Replace the text between `begin` and `end` markers in `doc` (append it when missing)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    doc.write_text(text.rstrip() + "\n")
