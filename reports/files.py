"""Files the product writes for people: output folders, symlink-safe writes, CSV cells.

- `prepare_out_dir`: every `--out` folder is new or empty; a non-empty one is refused unless the
  caller passes `force` (then the command's own files are replaced, nothing else is touched); an
  `--out` that is itself a symbolic link is refused (name the real folder instead).
- `open_new` / `write_text` / `write_bytes`: each file is written to a fresh temporary file in the
  same folder (created with O_EXCL, so never through a planted link) and renamed over the target.
  A rename replaces a symbolic link *itself*: a planted `report.html -> victim.txt` is replaced by
  the report and `victim.txt` is never opened.
- `csv_text`: OWASP's CSV-injection rule. A text cell starting with `=`, `+`, `-`, `@`, tab or
  carriage return is a formula to Excel/LibreOffice (`=HYPERLINK(...)`, `@SUM(...)`); it gets a
  leading `'`, which spreadsheets show as text. Numbers stay numbers: only `str` cells are
  changed, so `-3.5` (a float) is written as `-3.5`, while a device id `"-3"` becomes `'-3`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from rules.errors import OshError

#: OWASP "CSV Injection": cells starting with these are interpreted as formulas.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OutputDirError(OshError):
    """An `--out` folder that cannot be used as asked (not empty, a link, not a folder)."""


def check_out_dir(
    path: Path, *, force: bool = False, what: str = "the output", forceable: bool = True, option: str = "--out"
) -> Path:
    """Refuse `path` unless it is new, an empty folder, or (with `force`) any folder; never a
    symbolic link. `forceable=False`: the command has no --force (evidence is never overwritten).
    Only looks: commands call it before long work, `prepare_out_dir` again when they write."""
    path = Path(path)
    if path.is_symlink():
        raise OutputDirError(f"{option} {path} is a symbolic link (to {os.readlink(path)}); give the real folder")
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{option} {path} is a file, not a folder")
    entries = sorted(p.name for p in path.iterdir()) if path.exists() and not force else []
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        hint = " (or pass --force to replace the files it writes there)" if forceable else ""
        raise OutputDirError(
            f"{option} {path}: not an empty folder ({len(entries)} entries: {shown}); {what} goes into a new "
            f"or empty folder{hint}"
        )
    return path


def prepare_out_dir(path: Path, *, force: bool = False, what: str = "the output", forceable: bool = True) -> Path:
    """`check_out_dir`, then the folder is created (with its parents) if it is new."""
    path = check_out_dir(path, force=force, what=what, forceable=forceable)
    path.mkdir(parents=True, exist_ok=True)
    return path


@overload
def open_new(path: Path, mode: Literal["w"] = "w") -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def open_new(path: Path, mode: Literal["wb"]) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def open_new(path: Path, mode: str = "w") -> contextlib.AbstractContextManager[IO[Any]]:
    """Write `path` through a fresh temporary file renamed over it at the end (never follows a link)."""
    return _replacing(Path(path), mode)


@contextlib.contextmanager
def _replacing(path: Path, mode: str) -> Iterator[IO[Any]]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # a report is meant to be shared; mkstemp's 0600 is for secrets
        kw: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kw) as fh:
            yield fh
        os.replace(tmp, path)  # replaces a symbolic link at `path` itself, never its target
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    with open_new(path, "w") as fh:
        fh.write(text)


def write_bytes(path: Path, data: bytes) -> None:
    with open_new(path, "wb") as fh:
        fh.write(data)


def csv_text(cell: Any) -> Any:
    """A CSV cell with formula-starting text neutralised (module docstring); other values as is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell
