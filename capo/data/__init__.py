"""MTPE readers, the preference-pair builder and per-direction statistics."""

from capo.data.builder import BuildOptions, BuildReport, build_pairs, format_prompt
from capo.data.readers import read_all, read_triples
from capo.data.stats import DirectionStats, direction_stats, is_tie
from capo.data.triples import SPLITS, DataError, MTPETriple, PreferencePair

__all__ = [
    "SPLITS",
    "BuildOptions",
    "BuildReport",
    "DataError",
    "DirectionStats",
    "MTPETriple",
    "PreferencePair",
    "build_pairs",
    "direction_stats",
    "format_prompt",
    "is_tie",
    "read_all",
    "read_triples",
]
