"""Board users: names, roles and argon2id password hashes in one JSON file (mode 0600).

Hashing is argon2-cffi's `PasswordHasher` (argon2id, memory-hard, its maintained defaults);
hashes made with older parameters are upgraded at the next successful sign-in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rules.errors import ConfigError

NAME = re.compile(r"[\w .'@-]{1,64}")  # shown on acknowledgements: letters, digits, space . ' @ - _
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("no such user, constant-time refusal")


class Role(StrEnum):
    OFFICER = "officer"  # sees everything, acknowledges alarms
    VIEWER = "viewer"  # sees everything, acknowledges nothing


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


class UsersFile:
    """Read on every sign-in (so `oshmon board user add` takes effect without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            data: dict[str, dict[str, str]] = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"board users file {self.path} unreadable: {exc}") from None
        return data

    def _save(self, users: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(users, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def add(self, name: str, password: str, role: Role) -> bool:
        """Create or replace a user; True when the user is new."""
        if not NAME.fullmatch(name):
            raise ConfigError(f"user name {name!r}: 1-64 letters, digits, spaces or . ' @ - _")
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"password too short: at least {MIN_PASSWORD} characters")
        users = self._load()
        new = name not in users
        users[name] = {"role": str(role), "hash": _HASHER.hash(password)}
        self._save(users)
        return new

    def remove(self, name: str) -> bool:
        users = self._load()
        if users.pop(name, None) is None:
            return False
        self._save(users)
        return True

    def names(self) -> dict[str, Role]:
        return {n: Role(u["role"]) for n, u in self._load().items()}

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (same work either way)."""
        users = self._load()
        entry = users.get(name)
        try:
            _HASHER.verify(entry["hash"] if entry else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if entry is None:
            return None
        if _HASHER.check_needs_rehash(entry["hash"]):
            entry["hash"] = _HASHER.hash(password)
            self._save(users)
        return User(name, Role(entry["role"]))
