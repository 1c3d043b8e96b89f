"""The raw archive and the readers that bring measurements into it."""

from ._reader import MAX_RECORD_BYTES, RawRecord, measurement_files, read_records
from ._writer import ArchiveWriter, RawLocation, partition_path, read_raw

__all__ = [
    "MAX_RECORD_BYTES",
    "ArchiveWriter",
    "RawLocation",
    "RawRecord",
    "measurement_files",
    "partition_path",
    "read_raw",
    "read_records",
]
