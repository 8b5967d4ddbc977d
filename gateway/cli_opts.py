"""Command-line options shared by several `oshmon` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file (OSH_* variables override it).")
]
