"""The raw archive: every stored measurement as received, in OONI's dated layout.

`raw/YYYYMMDD/HH/CC/test_name/<run>.jsonl.gz`. Each measurement is one gzip member (compressed
where it was analysed, perhaps on another machine), so it is found again by (path, offset of
its member) without reading the whole file, and a gzip reader sees JSONL (but for a
measurement that arrived pretty-printed, kept byte for byte).

A measurement that arrived as a line of a gzip file (OONI's own archive is such files) is not
compressed again: the file is kept as it came, a can as OONI calls its files,
`cans/<run>/<n>-<name>`, and the measurement is its line there, as OONI's own index points
to a line of a file. Compressing costs about as much CPU as parsing; copying a file, next to
nothing. Archives written before kept several lines in a member: (path, offset, line from
there) reads them as it reads cans. Everything downstream can be rebuilt from here.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from isal import isal_zlib

from .._errors import StoreError
from ._reader import STREAM_ERRORS, Gunzip

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
    index: int  # the line counted from `offset` (across members); WHOLE: the member is all


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
        self._cans: dict[str, str] = {}  # input file -> its copy, made or to make
        self._to_copy: dict[str, str] = {}  # the copies the next flush makes

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

    def keep(self, source: str) -> str:
        """The archive's copy of the gzip input file `source` (relative to the root): made on
        the next flush, once per run whatever the number of its records stored."""
        can = self._cans.get(source)
        if can is None:
            name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(source).name)
            can = f"cans/{self.run_id}/{len(self._cans):05d}-{name[-80:]}"
            self._cans[source] = can
            self._to_copy[can] = source
        return can

    def flush(self) -> dict[str, int]:
        """Copy the input files to keep, append every queued member, then make them durable;
        returns the offset in each file where this flush's members begin. If that fails (a
        full disk), each file is cut back to where this flush began, its copies are removed
        and nothing stays queued: no member or copy is ever in part, and the next flush writes
        only its own."""
        offsets: dict[str, int] = {}
        written: list[Path] = []
        copied: list[str] = []
        try:
            for can, source in self._to_copy.items():
                target = self._folder_for(can)
                copied.append(can)
                shutil.copyfile(source, target)  # sendfile(2): the kernel copies
                written.append(target)
            for rel, members in self._pending.items():
                target = self._folder_for(rel)
                with open(target, "ab") as out:
                    offsets[rel] = out.tell()
                    written.append(target)
                    out.write(b"".join(members))
            if written:
                _make_durable(self.root, written)
            for can in self._to_copy:
                _uncache(self.root / can)
        except OSError as exc:
            for rel, offset in offsets.items():
                with contextlib.suppress(OSError):
                    os.truncate(self.root / rel, offset)
            for can in copied:
                with contextlib.suppress(OSError):
                    os.unlink(self.root / can)
                del self._cans[self._to_copy[can]]
            raise StoreError(f"{self.root}: cannot write the raw archive ({exc.strerror or exc}),"
                             " nothing of this batch stored") from None  # fmt: skip
        finally:
            self._pending.clear()
            self._sizes.clear()
            self._to_copy.clear()
        return offsets

    def _folder_for(self, rel: str) -> Path:
        """The path of `rel` under the root, its folder made once per run."""
        target = self.root / rel
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        return target


def read_raw(root: Path, location: RawLocation) -> bytes:
    """The bytes of one archived measurement."""
    with ArchiveReader(root) as reader:
        return reader.read(location)


class ArchiveReader:
    """Reads archived measurements; given them in (path, offset, index) order, it reads each
    file once: a can's lines are read on from where the last one ended."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._at: tuple[str, int] | None = None  # (path, offset) of the open stream
        self._stream: io.BufferedReader | None = None
        self._line = 0  # the index of the line the open stream reads next

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream, self._at = None, None

    def read(self, location: RawLocation) -> bytes:
        """The bytes of the measurement at `location`; one of STREAM_ERRORS if unreadable."""
        if location.index == WHOLE:
            return _member(self.root / location.path, location.offset)
        stream = self._stream
        if (
            stream is None
            or self._at != (location.path, location.offset)
            or (location.index < self._line)
        ):
            self.close()
            src = open(self.root / location.path, "rb")  # noqa: SIM115 (closed by close())
            src.seek(location.offset)
            stream = self._stream = io.BufferedReader(Gunzip(src), 1 << 20)
            self._at, self._line = (location.path, location.offset), 0
        for _ in range(location.index - self._line):
            if not stream.readline():
                break
        line = stream.readline()
        self._line = location.index + 1
        if not line:
            raise EOFError(f"{location.path} has no line {location.index + 1}")
        return line.strip()

    def read_all(self, locations: list[RawLocation]) -> Iterator[bytes | BaseException]:
        """Each location's bytes, or the error that kept them from being read."""
        for location in locations:
            try:
                yield self.read(location)
            except STREAM_ERRORS as exc:  # a file gone, cut or damaged
                self.close()
                yield exc


def _member(path: Path, offset: int) -> bytes:
    """The gzip member at `offset` of `path`, inflated."""
    with open(path, "rb") as src:
        src.seek(offset)
        inflater = zlib.decompressobj(wbits=31)
        out: list[bytes] = []
        while not inflater.eof:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            out.append(inflater.decompress(chunk))
    return b"".join(out)


def gzip_member(payload: bytes, level: int = 1) -> bytes:
    """One gzip member; ISA-L deflates several times faster than zlib at the same ratio."""
    compressor = isal_zlib.compressobj(level, zlib.DEFLATED, 31)
    return bytes(compressor.compress(payload) + compressor.flush())


def _uncache(path: Path) -> None:
    """Let the system drop a synced copy from its cache: nothing reads it again soon, and
    copies of a million measurements' input (7 GB) pressed the cache until the writing
    process spent its time reclaiming pages."""
    with contextlib.suppress(OSError, AttributeError):  # no posix_fadvise: nothing to do
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


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
