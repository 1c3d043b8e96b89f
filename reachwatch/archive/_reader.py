"""Read measurements as the world hands them over: one JSON file, JSONL, gzip, or OONI's layout.

Reading never stops at a bad record: every record that cannot be used still comes out, with a
`problem`, so that the ingest can quarantine it with its bytes and go on with the next one.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import orjson

from .._errors import InputError

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A measurement larger than this is quarantined (OONI's largest real ones are well under 1 MiB)."""

KEEP_BYTES = 64 * 1024 * 1024
"""Of an oversized record, at most this much is kept for the quarantine; the rest is counted."""

SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


@dataclass(slots=True)
class RawRecord:
    """One record as read: where it came from, its bytes, and why it is unusable (if known)."""

    source: str
    locator: str
    data: bytes
    problem: str | None = None


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


def read_records(path: Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """Every record of one file, in order."""
    name = path.name
    compressed = name.endswith(".gz")
    single_json = name.endswith((".json", ".json.gz"))
    source = str(path)
    try:
        stream = cast(IO[bytes], gzip.open(path, "rb") if compressed else open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    with stream:
        if single_json and (compressed or path.stat().st_size <= max_bytes):
            yield from _read_document(stream, source, max_bytes)
        else:
            yield from _read_lines(stream, source, max_bytes, first_line=1)


def _read_document(stream: IO[bytes], source: str, max_bytes: int) -> Iterator[RawRecord]:
    """A `.json` file holds one measurement, unless its first line is one (then it is JSONL)."""
    try:
        head = stream.readline(max_bytes + 1)
    except (EOFError, OSError, zlib.error) as exc:
        yield RawRecord(source, "record 1", b"", _stream_problem(exc))
        return
    if head.strip().startswith(b"{") and head.rstrip().endswith(b"}") and _is_json(head):
        yield RawRecord(source, "line 1", head.strip())
        yield from _read_lines(stream, source, max_bytes, first_line=2)
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
    except (EOFError, OSError, zlib.error) as exc:
        problem = _stream_problem(exc)
    data = b"".join(chunks)
    if size > max_bytes:
        rest = _drain(stream)
        problem = _too_large(size + rest, max_bytes)
    data = data.strip()
    if data or problem:
        yield RawRecord(source, "record 1", data, problem)


def _read_lines(
    stream: IO[bytes], source: str, max_bytes: int, first_line: int
) -> Iterator[RawRecord]:
    number = first_line - 1
    while True:
        number += 1
        try:
            line = stream.readline(max_bytes + 1)
        except (EOFError, OSError, zlib.error) as exc:
            yield RawRecord(source, f"line {number}", b"", _stream_problem(exc))
            return
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            kept, total, problem = _rest_of_long_line(stream, line)
            yield RawRecord(source, f"line {number}", kept, problem or _too_large(total, max_bytes))
            if problem:
                return
            continue
        stripped = line.strip()
        if stripped:
            yield RawRecord(source, f"line {number}", stripped)


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
    except (EOFError, OSError, zlib.error) as exc:
        return b"".join(kept), total, _stream_problem(exc)
    return b"".join(kept).rstrip(b"\r\n"), total, None


def _drain(stream: IO[bytes]) -> int:
    total = 0
    try:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    except (EOFError, OSError, zlib.error):
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
