"""Append-only on-disk spool: write batches here while the store is unreachable, replay in order.

Layout: `seg-<12 digits>.osp` segment files, each a run of frames `<u32 length><u32 crc32>
<payload>` (little-endian). Every append is flushed and fsync'd before it returns (and the
directory is fsync'd when a segment is created), so a spooled batch survives a crash or power
cut. On open, a torn frame at the end of the newest segment (a crash mid-append) is cut off; a
bad checksum anywhere else sets the segment aside as `.corrupt` and is reported. `cursor` holds
the replay position; it is not fsync'd because replaying a record twice is harmless (same series
and time overwrite).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")
#: A new segment is started past this size; consumed segments are deleted whole.
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Position:
    segment: int
    offset: int


class Spool:
    """FIFO of byte records in a directory; not thread-safe (SpooledStore serialises calls)."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.corrupt_segments = 0
        self._cursor = self._load_cursor()
        self._depth, self._bytes = 0, 0
        for seg in self._segments():
            self._scan(seg)
        self._writer: tuple[int, int] | None = None  # (segment number, fd)

    # -- state on disk ------------------------------------------------------------------------

    def _path(self, segment: int) -> Path:
        return self.dir / f"seg-{segment:012d}.osp"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem[4:]) for p in self.dir.glob("seg-*.osp"))

    def _load_cursor(self) -> Position:
        try:
            seg, off = (self.dir / "cursor").read_text().split()
            return Position(int(seg), int(off))
        except (OSError, ValueError):
            return Position(0, 0)

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(f"{self._cursor.segment} {self._cursor.offset}\n")
        os.replace(tmp, self.dir / "cursor")

    def _scan(self, segment: int) -> None:
        """Count the pending frames of a segment; cut a torn tail, set aside a corrupt one."""
        path = self._path(segment)
        if segment < self._cursor.segment:
            path.unlink()
            return
        data = path.read_bytes()
        offset = self._cursor.offset if segment == self._cursor.segment else 0
        while offset < len(data):
            frame = _read_frame(data, offset)
            if frame is None:
                break
            self._depth += 1
            self._bytes += _FRAME.size + len(frame)
            offset += _FRAME.size + len(frame)
        if offset < len(data):
            if segment == max(self._segments()):
                log.warning("spool %s: cutting a torn record at byte %d (crash mid-append)", path, offset)
                with path.open("r+b") as f:
                    f.truncate(offset)
                    os.fsync(f.fileno())
            else:
                log.error("spool %s: bad checksum at byte %d; segment set aside as .corrupt", path, offset)
                self.corrupt_segments += 1
                path.rename(path.with_suffix(".corrupt"))

    # -- appending ----------------------------------------------------------------------------

    def append(self, payload: bytes) -> None:
        """Add a record at the end; durable (fsync'd) when this returns. OSError on disk trouble."""
        fd = self._writable_fd(len(payload))
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(fd, frame)
        while written < len(frame):
            written += os.write(fd, frame[written:])
        os.fsync(fd)
        self._depth += 1
        self._bytes += len(frame)

    def _writable_fd(self, size: int) -> int:
        if self._writer is not None:
            segment, fd = self._writer
            if os.fstat(fd).st_size + size <= self.segment_bytes:
                return fd
            os.close(fd)
        segment = max([*self._segments(), self._cursor.segment - 1, 0]) + 1
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.dir)
        self._writer = (segment, fd)
        return fd

    # -- replaying ----------------------------------------------------------------------------

    def depth(self) -> int:
        """Records waiting to be replayed."""
        return self._depth

    def pending_bytes(self) -> int:
        return self._bytes

    def peek(self) -> tuple[Position, bytes] | None:
        """The oldest record not yet consumed, with the position just after it."""
        segments = [seg for seg in self._segments() if seg >= self._cursor.segment]
        for segment in segments:
            offset = self._cursor.offset if segment == self._cursor.segment else 0
            with self._path(segment).open("rb") as f:
                f.seek(offset)
                head = f.read(_FRAME.size)
                if len(head) == _FRAME.size:
                    size, crc = _FRAME.unpack(head)
                    payload = f.read(size)
                    if len(payload) == size and zlib.crc32(payload) == crc:
                        return Position(segment, offset + _FRAME.size + size), payload
            if segment == segments[-1]:
                return None  # the newest segment ends here (it may be appended to later)
            self._finish(segment)
        return None

    def consume(self, after: Position, size: int) -> None:
        """Mark the record peeked with `after` as replayed."""
        self._cursor = after
        self._depth -= 1
        self._bytes -= _FRAME.size + size
        self._save_cursor()
        if self._depth == 0:
            for segment in self._segments():
                self._finish(segment)

    def _finish(self, segment: int) -> None:
        """A segment is fully replayed: delete it (closing it first if it is being written)."""
        if self._writer is not None and self._writer[0] == segment:
            os.close(self._writer[1])
            self._writer = None
        self._path(segment).unlink(missing_ok=True)
        self._cursor = Position(segment + 1, 0)
        self._save_cursor()

    def close(self) -> None:
        if self._writer is not None:
            os.close(self._writer[1])
            self._writer = None


def _read_frame(data: bytes, offset: int) -> bytes | None:
    if offset + _FRAME.size > len(data):
        return None
    size, crc = _FRAME.unpack_from(data, offset)
    payload = data[offset + _FRAME.size : offset + _FRAME.size + size]
    if len(payload) != size or zlib.crc32(payload) != crc:
        return None
    return payload


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
