"""The pipeline: raw measurement -> observations -> verdicts, and the ingest that runs it."""

from ._dask import ingest_on
from ._ingest import IngestReport, Intake, ingest, quarantined
from ._observations import Observation, observations_of
from .verdicts import Verdict, verdicts_of

__all__ = [
    "IngestReport",
    "Intake",
    "Observation",
    "Verdict",
    "ingest",
    "ingest_on",
    "observations_of",
    "quarantined",
    "verdicts_of",
]
