"""The raw archive: every stored measurement as received, in OONI's dated layout.

`raw/YYYYMMDD/HH/CC/test_name/<run>.jsonl.gz`. Each flush appends one gzip member per file, so
a measurement is found again by (path, offset of its member, line within the member) without
reading the whole file: everything downstream can be rebuilt from here.
"""

from __future__ import annotations

import ctypes
import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from isal import isal_zlib

_LIBC = ctypes.CDLL(None, use_errno=True)
_SYNCFS = getattr(_LIBC, "syncfs", None)


@dataclass(frozen=True, slots=True)
class RawLocation:
    """Where one measurement's bytes are kept, relative to the archive root."""

    path: str
    offset: int
    index: int


def partition_path(start_time: datetime, probe_cc: str, test_name: str, run_id: str) -> str:
    safe_test = "".join(c if c.isalnum() or c in "_-" else "_" for c in test_name)[:64]
    return (
        f"raw/{start_time:%Y%m%d}/{start_time:%H}/{probe_cc}/{safe_test or 'unknown'}/"
        f"{run_id}.jsonl.gz"
    )


@dataclass(slots=True)
class _Pending:
    lines: list[bytes] = field(default_factory=list)


class ArchiveWriter:
    """Buffers measurements per archive file and writes them durably on `flush`."""

    def __init__(self, root: Path, run_id: str, level: int = 1) -> None:
        self.root = root
        self.run_id = run_id
        self.level = level
        self._pending: dict[str, _Pending] = {}
        self._dirs: set[Path] = set()
        self._paths: dict[tuple[datetime, str, str], str] = {}

    def add(self, start_time: datetime, probe_cc: str, test_name: str, data: bytes) -> str:
        """Queue one measurement; returns its file (the member offset is known at flush)."""
        hour = start_time.replace(minute=0, second=0, microsecond=0)
        path = self._paths.get((hour, probe_cc, test_name))
        if path is None:
            path = partition_path(start_time, probe_cc, test_name, self.run_id)
            self._paths[(hour, probe_cc, test_name)] = path
        self._pending.setdefault(path, _Pending()).lines.append(data)
        return path

    def flush(self) -> dict[str, int]:
        """Append every queued member, then make them durable; returns each file's offset."""
        offsets: dict[str, int] = {}
        written: list[Path] = []
        for rel, pending in self._pending.items():
            target = self.root / rel
            if target.parent not in self._dirs:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(target.parent)
            member = _gzip_member(b"\n".join([*pending.lines, b""]), self.level)  # one copy
            with open(target, "ab") as out:
                offsets[rel] = out.tell()
                out.write(member)
            written.append(target)
        if written:
            _make_durable(self.root, written)
        self._pending.clear()
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
    return b"".join(out).split(b"\n")[location.index]


def _gzip_member(payload: bytes, level: int) -> bytes:
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
