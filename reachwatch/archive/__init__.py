"""The raw archive and the readers that bring measurements into it."""

from ._reader import MAX_RECORD_BYTES, RawRecord, measurement_files, read_records
from ._writer import (
    WHOLE,
    ArchiveReader,
    ArchiveWriter,
    RawLocation,
    gzip_member,
    partition_path,
    read_raw,
)

__all__ = [
    "MAX_RECORD_BYTES",
    "WHOLE",
    "ArchiveReader",
    "ArchiveWriter",
    "RawLocation",
    "RawRecord",
    "gzip_member",
    "measurement_files",
    "partition_path",
    "read_raw",
    "read_records",
]
