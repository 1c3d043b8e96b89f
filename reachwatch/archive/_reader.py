"""Read measurements as the world hands them over: one JSON file, JSONL, gzip, or OONI's layout.

Reading never stops at a bad record: every record that cannot be used still comes out, with a
`problem`, so that the ingest can quarantine it with its bytes and go on with the next one.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, cast

import orjson
from isal import igzip, isal_zlib

from .._errors import InputError

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A measurement larger than this is quarantined (OONI's largest real ones are well under 1 MiB)."""

KEEP_BYTES = 64 * 1024 * 1024
"""Of an oversized record, at most this much is kept for the quarantine; the rest is counted."""

SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
PROGRESS_STEP = 1 << 20

# what a damaged compressed stream raises (gzip.BadGzipFile is an OSError)
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    cast(type[BaseException], isal_zlib.error),
)


@dataclass(slots=True)
class RawRecord:
    """One record as read: where it came from, its bytes, and why it is unusable (if known)."""

    source: str
    locator: str
    data: bytes
    problem: str | None = None
    line: int = 0
    """The record's line (from 1) in `source` when that is a gzip file the archive can keep as
    it came, pointing into it, instead of compressing the record again; 0 otherwise."""


def measurement_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders (OONI's raw layout or any tree) into the measurement files they hold."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def read_records(
    path: Path,
    max_bytes: int = MAX_RECORD_BYTES,
    on_bytes: Callable[[int], None] | None = None,
    *,
    ahead: bool = True,
) -> Iterator[RawRecord]:
    """Every record of one file, in order; `on_bytes` hears how far into the file we are.
    A gzip file is inflated `ahead` in a thread of its own, or else as it is read."""
    name = path.name
    compressed = name.endswith(".gz")
    single_json = name.endswith((".json", ".json.gz"))
    source = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    inflated = InflatedAhead(raw, path, ahead=ahead) if compressed else None
    stream = cast(IO[bytes], inflated or raw)
    with stream:
        if single_json and (compressed or path.stat().st_size <= max_bytes):
            records = _read_document(stream, source, max_bytes, compressed)
        else:
            records = _read_lines(stream, source, max_bytes, 1, compressed)
        if on_bytes is None:
            yield from records
            return
        done = 0
        for record in records:
            yield record
            position = inflated.position if inflated else raw.tell()
            if position - done >= PROGRESS_STEP:
                on_bytes(position - done)
                done = position
        on_bytes(path.stat().st_size - done)


class Gunzip(io.RawIOBase):
    """Multi-member gzip, inflated with ISA-L (several times faster than zlib).

    Every byte before a truncation is handed out first; only the read after them raises
    EOFError, so the complete records in front of a cut are kept.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflater = isal_zlib.decompressobj(wbits=31)
        self._pending = memoryview(b"")
        self._started = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._started and not self._inflater.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker")
                return 0
            self._started = True
            if self._inflater.eof:  # a new member after a finished one
                self._inflater = isal_zlib.decompressobj(wbits=31)
            out = self._inflater.decompress(chunk)
            while self._inflater.eof and self._inflater.unused_data:
                rest = self._inflater.unused_data
                self._inflater = isal_zlib.decompressobj(wbits=31)
                out += self._inflater.decompress(rest)
            self._pending = memoryview(out)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class InflatedAhead(io.BufferedIOBase):
    """A gzip file inflated a few blocks ahead, in a thread of its own: ISA-L's reader lets go
    of the GIL while it inflates, so inflating (a fifth of reading a measurement) runs on
    another core while this one parses. Where every core analyses already (a worker of a pool
    or a cluster), that thread only adds handoffs (5% more CPU a measurement): without
    `ahead`, each block is inflated here when it is needed. Lines are cut straight from the
    blocks: one copy each, where a buffered reader on top would make two more.

    Where the stream is damaged, ISA-L's reader drops the block it was inflating; `Gunzip`
    then reads the file again from where the blocks stopped, so every byte before the damage
    still comes out, and the error is the one `Gunzip` raises.
    """

    BLOCK: ClassVar[int] = 1 << 20
    AHEAD: ClassVar[int] = 4

    def __init__(self, raw: IO[bytes], path: Path, *, ahead: bool = True) -> None:
        self.position = 0  # how far into the compressed file inflating has read
        self._path = path
        self._raw = raw
        self._blocks: queue.Queue[bytes | BaseException] = queue.Queue(self.AHEAD)
        self._block = b""
        self._at = 0  # where in the block the next byte is
        self._handed = 0  # the bytes of the blocks before this one
        self._ended = False
        self._rest: IO[bytes] | None = None  # takes over after damage
        self._stop = threading.Event()
        self._here: Generator[bytes | BaseException, None, None] | None = None
        self._worker: threading.Thread | None = None
        if ahead:
            self._worker = threading.Thread(target=self._inflate, name="reachwatch-inflate",
                                            daemon=True)  # fmt: skip
            self._worker.start()
        else:  # inflated here, block by block, as they are needed
            self._here = self._inflated()

    def readable(self) -> bool:
        return True

    def _inflated(self) -> Generator[bytes | BaseException, None, None]:
        """The file's blocks, inflated, then b"" (the end), or the error that stopped them."""
        try:
            with igzip.IGzipFile(fileobj=self._raw, mode="rb") as stream:  # type: ignore[no-untyped-call]
                while True:
                    block = stream.read(self.BLOCK)
                    self.position = self._raw.tell()
                    yield block
                    if not block:
                        return
        except Exception as exc:  # handed over: the reader decides what it means
            yield exc

    def _inflate(self) -> None:
        for item in self._inflated():
            if not self._hand(item):
                return

    def _hand(self, item: bytes | BaseException) -> bool:
        """Queue `item` unless the reader has gone; False if it has."""
        while not self._stop.is_set():
            try:
                self._blocks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next_block(self) -> bool:
        """The next block in place; False at the end, or after damage (then `_rest` reads)."""
        self._handed += len(self._block)
        self._block, self._at = b"", 0
        if self._ended:
            return False
        item = next(self._here) if self._here is not None else self._blocks.get()
        if isinstance(item, BaseException):
            self._rest = self._read_on()
            return False
        self._ended = not item
        self._block = item
        return bool(item)

    def _damaged(self) -> bool:
        """Whether `_rest` reads on: a method, as `_next_block` may have just set it (read
        inline, mypy's narrowing of `_rest` to None above would hold, and mypyc checks it)."""
        return self._rest is not None

    def _read_on(self) -> IO[bytes]:
        """After damage: the same file through `Gunzip`, past what was handed out (an error
        on the way is the damage's)."""
        rest = io.BufferedReader(Gunzip(open(self._path, "rb")), 1 << 20)  # noqa: SIM115
        skip = self._handed
        while skip and (got := len(rest.read(min(skip, 1 << 20)))):
            skip -= got
        return rest

    def readline(self, limit: int | None = -1) -> bytes:
        return self._take(-1 if limit is None else limit, line=True)[0]

    def read(self, size: int | None = -1) -> bytes:
        return self._take(-1 if size is None else size, line=False)[0]

    def line(self, limit: int) -> tuple[bytes, bool]:
        """`readline(limit)` without the newline, and whether there was one: a line is
        copied once, where readline and strip copy it twice (4 us for 32 kB)."""
        return self._take(limit, line=True, end=False)

    def _take(self, limit: int, line: bool, end: bool = True) -> tuple[bytes, bool]:
        """Up to `limit` bytes (all if negative), and if `line` up to the first newline
        (included if `end`): slices of the blocks, joined only where they span two. Also
        whether a newline was found."""
        parts: list[bytes] = []
        size = 0
        ended = False
        while not ended and (limit < 0 or size < limit):
            if self._rest is not None:
                left = -1 if limit < 0 else limit - size
                rest = self._rest.readline(left) if line else self._rest.read(left)
                ended = line and rest.endswith(b"\n")
                parts.append(rest if end or not ended else rest[:-1])
                break
            block, at = self._block, self._at
            if at >= len(block):
                if not self._next_block() and not self._damaged():
                    break
                continue
            newline = block.find(b"\n", at) if line else -1
            stop = len(block) if newline < 0 else newline + 1
            if limit >= 0:
                stop = min(stop, at + limit - size)
            ended = stop == newline + 1
            parts.append(block[at : stop if end or not ended else newline])
            size += stop - at
            self._at = stop
        return (parts[0] if len(parts) == 1 else b"".join(parts)), ended

    def close(self) -> None:
        self._stop.set()
        while True:  # let a thread blocked on a full queue see the stop
            try:
                self._blocks.get_nowait()
            except queue.Empty:
                break
        if self._worker is not None:
            self._worker.join()
        if self._here is not None:
            self._here.close()
        self._raw.close()
        if self._rest is not None:
            self._rest.close()
        super().close()


def _read_document(
    stream: IO[bytes], source: str, max_bytes: int, compressed: bool
) -> Iterator[RawRecord]:
    """A `.json` file holds one measurement, unless its first line is one (then it is JSONL)."""
    try:
        head = stream.readline(max_bytes + 1)
    except STREAM_ERRORS as exc:
        yield RawRecord(source, "record 1", b"", _stream_problem(exc))
        return
    if head.strip().startswith(b"{") and head.rstrip().endswith(b"}") and _is_json(head):
        yield RawRecord(source, "line 1", head.strip(), line=int(compressed))
        yield from _read_lines(stream, source, max_bytes, 2, compressed)
        return
    chunks = [head]
    size = len(head)
    problem = None
    try:
        while size <= max_bytes:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except STREAM_ERRORS as exc:
        problem = _stream_problem(exc)
    data = b"".join(chunks)
    if size > max_bytes:
        rest = _drain(stream)
        problem = _too_large(size + rest, max_bytes)
    data = data.strip()
    if data or problem:
        yield RawRecord(source, "record 1", data, problem)


def _read_lines(
    stream: IO[bytes], source: str, max_bytes: int, first_line: int, compressed: bool
) -> Iterator[RawRecord]:
    """Lines are counted as the archive counts them when it reads one back from a kept
    copy of a compressed `source` (`read_raw`): every newline ends one."""
    number = first_line - 1
    while True:
        number += 1
        try:
            line, ended = _line(stream, max_bytes + 1)
        except STREAM_ERRORS as exc:
            yield RawRecord(source, f"line {number}", b"", _stream_problem(exc))
            return
        if not line and not ended:
            return
        if len(line) > max_bytes and not ended:
            kept, total, problem = _rest_of_long_line(stream, line)
            yield RawRecord(source, f"line {number}", kept, problem or _too_large(total, max_bytes))
            if problem:
                return
            continue
        if line[:1].isspace() or line[-1:].isspace():
            line = line.strip()
        if line:
            yield RawRecord(source, f"line {number}", line, line=number if compressed else 0)


def _line(stream: IO[bytes], limit: int) -> tuple[bytes, bool]:
    """The next line without its newline, and whether it had one."""
    if isinstance(stream, InflatedAhead):
        return stream.line(limit)
    line = stream.readline(limit)
    return (line[:-1], True) if line.endswith(b"\n") else (line, False)


def _rest_of_long_line(stream: IO[bytes], head: bytes) -> tuple[bytes, int, str | None]:
    """Consume an oversized line; keep at most KEEP_BYTES of it and count the rest."""
    kept = [head]
    kept_size = total = len(head)
    try:
        while True:
            chunk = stream.readline(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if kept_size < KEEP_BYTES:
                kept.append(chunk[: KEEP_BYTES - kept_size])
                kept_size += len(kept[-1])
            if chunk.endswith(b"\n"):
                break
    except STREAM_ERRORS as exc:
        return b"".join(kept), total, _stream_problem(exc)
    return b"".join(kept).rstrip(b"\r\n"), total, None


def _drain(stream: IO[bytes]) -> int:
    total = 0
    try:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    except STREAM_ERRORS:
        pass
    return total


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _too_large(size: int, limit: int) -> str:
    return f"record is {size:,} bytes; the limit is {limit:,}"


def _stream_problem(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "gzip stream truncated: the file ends before its end-of-stream marker"
    return f"unreadable compressed stream: {exc}"
