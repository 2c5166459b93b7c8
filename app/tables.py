"""The UI's tables: typed records from the services, formatted as DataFrames with the UI's own labels."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from capo_lab.records import DatasetInfo, DirectionStats, PairRecord, RunRecord, SourceStatus


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Rows under exactly these headers, also when there are none (no placeholder "1 2 3" headers)."""
    return pd.DataFrame(rows, columns=columns)


def datasets_frame(infos: Sequence[DatasetInfo]) -> pd.DataFrame:
    rows = [
        {
            "id": d.id,
            "name": d.name,
            "pairs": d.pair_count,
            "directions": " ".join(d.directions),
            "created": d.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for d in infos
    ]
    return frame(rows, ["id", "name", "pairs", "directions", "created"])


def pairs_frame(pairs: Sequence[PairRecord]) -> pd.DataFrame:
    rows = [
        {
            "pair_id": p.pair_id,
            "split": p.split,
            "direction": p.direction,
            "source": p.source_text,
            "chosen (post-edit)": p.chosen,
            "rejected (MT)": p.rejected,
            "hter": p.hter,
        }
        for p in pairs
    ]
    return frame(
        rows, ["pair_id", "split", "direction", "source", "chosen (post-edit)", "rejected (MT)", "hter"]
    )


STATS_COLUMNS = [
    "direction",
    "pairs",
    "ties",
    "mean_source_chars",
    "mean_chosen_chars",
    "mean_rejected_chars",
    "mean_hter",
    "bleu",
    "chrf",
    "tokens_per_char",
]


def stats_frame(stats: Sequence[DirectionStats]) -> pd.DataFrame:
    return frame([s.as_dict() for s in stats], STATS_COLUMNS)


def sources_frame(found: Sequence[SourceStatus]) -> pd.DataFrame:
    rows = [
        {
            "name": s.name,
            "what": s.what,
            "status": s.status,
            "size (MB)": None if s.size_bytes is None else round(s.size_bytes / 1e6, 2),
            "path": s.path,
        }
        for s in found
    ]
    return frame(rows, ["name", "what", "status", "size (MB)", "path"])


def queue_frame(found: Sequence[RunRecord]) -> pd.DataFrame:
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "objective": r.config["objective"]["name"],
            "status": r.status,
            "step": f"{r.step}/{r.total_steps or '?'}",
            "study": r.study_id or "",
            "error": r.error or "",
        }
        for r in found
    ]
    return frame(rows, ["id", "name", "objective", "status", "step", "study", "error"])
