"""The raw archive: every stored measurement as received, in OONI's dated layout.

`raw/YYYYMMDD/HH/CC/test_name/<run>.jsonl.gz`. Each measurement is one gzip member (compressed
where it was analysed, perhaps on another machine), so it is found again by (path, offset of
its member) without reading the whole file, and a gzip reader sees JSONL (but for a
measurement that arrived pretty-printed, kept byte for byte). Archives written before kept
several lines in a member: (path, offset, line within the member) reads both. Everything
downstream can be rebuilt from here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from isal import isal_zlib

from .._errors import StoreError

_LIBC = ctypes.CDLL(None, use_errno=True)
_SYNCFS = getattr(_LIBC, "syncfs", None)


WHOLE = -1
"""A member that holds one measurement exactly as received, line breaks included (a
pretty-printed document keeps them: its computed uid depends on its bytes)."""


@dataclass(frozen=True, slots=True)
class RawLocation:
    """Where one measurement's bytes are kept, relative to the archive root."""

    path: str
    offset: int
    index: int  # the line within the member; WHOLE: the member is this one measurement


def partition_path(start_time: datetime, probe_cc: str, test_name: str, run_id: str) -> str:
    safe_test = "".join(c if c.isalnum() or c in "_-" else "_" for c in test_name)[:64]
    return (
        f"raw/{start_time:%Y%m%d}/{start_time:%H}/{probe_cc}/{safe_test or 'unknown'}/"
        f"{run_id}.jsonl.gz"
    )


class ArchiveWriter:
    """Buffers members per archive file and writes them durably on `flush`."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self._pending: dict[str, list[bytes]] = {}
        self._sizes: dict[str, int] = {}
        self._dirs: set[Path] = set()
        self._paths: dict[tuple[datetime, str, str], str] = {}

    def add(
        self, start_time: datetime, probe_cc: str, test_name: str, member: bytes
    ) -> tuple[str, int]:
        """Queue one measurement's gzip member; returns its file and where in what this flush
        appends to that file it starts (the file's own offset is known at flush)."""
        hour = start_time.replace(minute=0, second=0, microsecond=0)
        path = self._paths.get((hour, probe_cc, test_name))
        if path is None:
            path = partition_path(start_time, probe_cc, test_name, self.run_id)
            self._paths[(hour, probe_cc, test_name)] = path
        return self.add_to(path, member)

    def add_to(self, path: str, member: bytes) -> tuple[str, int]:
        """Queue a gzip member for the file `path` (relative to the root), as `add` does."""
        at = self._sizes.get(path, 0)
        self._pending.setdefault(path, []).append(member)
        self._sizes[path] = at + len(member)
        return path, at

    def flush(self) -> dict[str, int]:
        """Append every queued member, then make them durable; returns the offset in each
        file where this flush's members begin. If that fails (a full disk), each file is cut
        back to where this flush began and nothing stays queued: no member is ever in part,
        and the next flush writes only its own."""
        offsets: dict[str, int] = {}
        written: list[Path] = []
        try:
            for rel, members in self._pending.items():
                target = self.root / rel
                if target.parent not in self._dirs:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._dirs.add(target.parent)
                with open(target, "ab") as out:
                    offsets[rel] = out.tell()
                    written.append(target)
                    out.write(b"".join(members))
            if written:
                _make_durable(self.root, written)
        except OSError as exc:
            for rel, offset in offsets.items():
                with contextlib.suppress(OSError):
                    os.truncate(self.root / rel, offset)
            raise StoreError(f"{self.root}: cannot write the raw archive ({exc.strerror or exc}),"
                             " nothing of this batch stored") from None  # fmt: skip
        finally:
            self._pending.clear()
            self._sizes.clear()
        return offsets


def read_raw(root: Path, location: RawLocation) -> bytes:
    """The bytes of one archived measurement."""
    with open(root / location.path, "rb") as src:
        src.seek(location.offset)
        inflater = zlib.decompressobj(wbits=31)
        out: list[bytes] = []
        while not inflater.eof:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            out.append(inflater.decompress(chunk))
    payload = b"".join(out)
    return payload if location.index == WHOLE else payload.split(b"\n")[location.index]


def gzip_member(payload: bytes, level: int = 1) -> bytes:
    """One gzip member; ISA-L deflates several times faster than zlib at the same ratio."""
    compressor = isal_zlib.compressobj(level, zlib.DEFLATED, 31)
    return bytes(compressor.compress(payload) + compressor.flush())


def _make_durable(root: Path, files: list[Path]) -> None:
    """One syncfs(2) for the whole archive file system (files and new folders alike) where
    Linux offers it; otherwise fsync each file and its folder."""
    if _SYNCFS is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in files:
        for target in (path, path.parent):
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
