"""One exception hierarchy for the whole package: callers catch `ReachwatchError`."""

from __future__ import annotations

from pathlib import Path


class ReachwatchError(Exception):
    """Base of every error reachwatch raises on purpose."""


class InvalidMeasurement(ReachwatchError):
    """A record that is not a measurement we can store; `reason` says why, for the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InputError(ReachwatchError):
    """A path or option the user gave that cannot be used (missing file, unknown format)."""


class StoreError(ReachwatchError):
    """The store cannot be opened or written (locked, full disk, not a reachwatch database)."""


def read_text(path: Path, error: type[InputError]) -> str:
    """A UTF-8 file a user named, or `error` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
