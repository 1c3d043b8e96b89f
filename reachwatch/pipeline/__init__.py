"""The pipeline: raw measurement -> observations -> verdicts, and the ingest that runs it."""

from ._dask import LocalPool, ingest_on
from ._ingest import COMMIT_ROWS, IngestReport, Intake, ingest, quarantined
from ._observations import Observation, observations_of
from ._reanalyse import ReanalysisReport, reanalyse, to_reanalyse
from .verdicts import Verdict, verdicts_of

__all__ = [
    "COMMIT_ROWS",
    "IngestReport",
    "Intake",
    "LocalPool",
    "Observation",
    "ReanalysisReport",
    "Verdict",
    "ingest",
    "ingest_on",
    "observations_of",
    "quarantined",
    "reanalyse",
    "to_reanalyse",
    "verdicts_of",
]
