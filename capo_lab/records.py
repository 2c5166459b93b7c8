"""The frozen records the lab's services return, in one place for the front ends.

Storage defines the stored ones; the UI imports them from here, never from ``storage``, and so do the
CLI's commands, except the database operations (``capo-lab db``).
"""

from capo.config import ConfigProblem
from capo.data.stats import DirectionStats
from capo_lab.comparisons import AccuracyCell, DirectionAccuracy
from capo_lab.datasets import ImportProblem, ImportResult
from capo_lab.pairs import MarginPoint, PairDetail, PairRow, PairTokens
from capo_lab.sources import SourceStatus
from storage.records import (
    DatasetInfo,
    EvaluationRecord,
    MetricRow,
    PairRecord,
    PairScoreRecord,
    RunRecord,
    RunStatus,
    StudyRecord,
)

__all__ = [
    "AccuracyCell",
    "ConfigProblem",
    "DirectionAccuracy",
    "ImportProblem",
    "DatasetInfo",
    "DirectionStats",
    "EvaluationRecord",
    "ImportResult",
    "MarginPoint",
    "MetricRow",
    "PairDetail",
    "PairRecord",
    "PairRow",
    "PairScoreRecord",
    "PairTokens",
    "RunRecord",
    "RunStatus",
    "SourceStatus",
    "StudyRecord",
]
