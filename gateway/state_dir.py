"""Where the gateway keeps its local state, and which store that state belongs to.

The state directory (spool, alert checkpoint, pseudonym key) is never relative to the working
directory and is always one directory per store (docs/durability.md):

- `OSH_STATE_DIR` when set;
- SQLite: beside the database file, `<resolved file>.state`;
- InfluxDB: `<base>/oshmon/<store id>`, where `<base>` is `$STATE_DIRECTORY` (set by systemd's
  `StateDirectory=oshmon`, i.e. `/var/lib/oshmon`, when run as a service; then the `oshmon/`
  level is left out), else `$XDG_STATE_HOME`, else `~/.local/state` (XDG Base Directory spec).

The store identity names the store without secrets: the SQLite file's resolved path, or the
InfluxDB URL (no user info) with the database (v1) or organisation and bucket (v2).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rules.errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from gateway.config import Settings

#: The default of versions before 0.x: relative to the working directory (issue 9).
LEGACY_STATE_DIR = Path("oshmon-state")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def store_identity(settings: Settings) -> str:
    """`sqlite /abs/path.sqlite` or `influx v1 http://host:port db=NAME` (v2: `org=O bucket=B`)."""
    if settings.store == "sqlite":
        return f"sqlite {settings.sqlite_path.expanduser().resolve()}"
    parts = urlsplit(settings.influx_url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 8086)
    except ValueError:
        raise ConfigError("OSH_INFLUX_URL has an invalid port") from None
    where = f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"
    if settings.influx_api == "v2":
        return f"influx v2 {where} org={settings.influx_org} bucket={settings.influx_bucket}"
    return f"influx v1 {where} db={settings.influx_db}"


def store_dir_name(identity: str) -> str:
    """A readable, file-system-safe, collision-free directory name for a store identity."""
    words = identity.split(" ", 2)[-1]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", re.sub(r"^[a-z]+://", "", words)).strip("-")[:60]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{slug}-{digest}"


def default_state_dir(settings: Settings) -> Path:
    """The state directory when `OSH_STATE_DIR` is not set (module docstring)."""
    if settings.store == "sqlite":
        db = settings.sqlite_path.expanduser().resolve()
        return db.with_name(db.name + ".state")
    name = store_dir_name(store_identity(settings))
    service = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if service and Path(service).is_absolute():
        return Path(service) / name
    xdg = os.environ.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "oshmon" / name
    try:
        home = Path.home()
    except RuntimeError:
        raise ConfigError("no home directory to keep the gateway's state in: set OSH_STATE_DIR") from None
    return home / ".local" / "state" / "oshmon" / name


#: The state directory holds ack names and notes (alerts.json), the pseudonym key and spooled
#: readings: only the gateway's own user may read it.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: What oshmon keeps in a state directory (gateway, checkpoint, spool, board). Only these are
#: tightened: `OSH_STATE_DIR=.` must never chmod someone's own files.
STATE_ENTRIES = frozenset(
    {"alerts.json", "alerts.tmp", "pseudonym.key", "store", "store.tmp", "spool"}
    | {"board-users.json", "board-session.key"}
)


def private_state_dir(path: Path) -> Path:
    """Create `path` 0700, or make an existing one private: its oshmon files 0600 (the spool 0700
    with its files 0600), and the folder itself 0700 when it holds nothing but oshmon's files.
    A folder with other content (OSH_STATE_DIR pointing at a shared place) is left as it is, with
    a warning when others can read it."""
    if not path.exists():
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
        return path
    try:
        entries = list(path.iterdir())
        for entry in entries:
            if entry.name in STATE_ENTRIES and not entry.is_symlink():
                _tighten(entry)
        if all(e.name in STATE_ENTRIES for e in entries):
            os.chmod(path, PRIVATE_DIR_MODE)
        elif path.stat().st_mode & 0o077:
            log.warning("state directory %s holds other files and others can read it: keep oshmon's state apart", path)
    except PermissionError as exc:
        log.warning("cannot make the state directory private (%s): make it readable by this user only", exc)
    return path


def _tighten(entry: Path) -> None:
    if entry.is_dir():
        os.chmod(entry, PRIVATE_DIR_MODE)
        for child in entry.iterdir():
            if child.is_file() and not child.is_symlink():
                os.chmod(child, PRIVATE_FILE_MODE)
    else:
        os.chmod(entry, PRIVATE_FILE_MODE)


#: File in the state directory naming the store it belongs to (its identity, one line).
STORE_MARKER = "store"


def claim_state_dir(path: Path, identity: str) -> None:
    """Bind a state directory to its store before the gateway opens the spool in it.

    A directory that names another store and still holds spooled batches would replay that
    store's readings and alert events into this one: a ConfigError naming both (start against the
    other store to drain it, or move the spool away). Otherwise the directory is (re)claimed; the
    alert checkpoint of another store is then ignored on its own (gateway/checkpoint.py)."""
    marker = path / STORE_MARKER
    owner = marker.read_text().strip() if marker.is_file() else None
    if owner == identity:
        return
    if owner is not None and _spool_pending(path / "spool"):
        raise ConfigError(
            f"state directory {path} holds spooled batches of another store ({owner}), not of {identity}: "
            f"start the gateway against that store to replay them, or move {path / 'spool'} away"
        )
    path.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(identity + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(marker)


def _spool_pending(spool_dir: Path) -> bool:
    if not spool_dir.is_dir():
        return False
    from storage.spool import Spool

    return Spool(spool_dir).depth() > 0
