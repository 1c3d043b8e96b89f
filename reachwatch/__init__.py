"""reachwatch: an internet-censorship observatory that answers with evidence."""

from ._errors import InputError, InvalidMeasurement, ReachwatchError, StoreError

__version__ = "0.1.0"

__all__ = ["InputError", "InvalidMeasurement", "ReachwatchError", "StoreError", "__version__"]
