"""The UI's tables: typed records from the services, formatted as DataFrames with the UI's own labels."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from app.charts import word_diff_html
from capo.schedule import eta_seconds
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


PAIR_COLUMNS = ["pair_id", "split", "direction", "source", "rejected (MT)", "chosen (post-edit)", "hter"]


def pairs_frame(pairs: Sequence[PairRecord]) -> pd.DataFrame:
    """One row per pair; the MT and its post-edit side by side, in the order the diff reads."""
    rows = [
        {
            "pair_id": p.pair_id,
            "split": p.split,
            "direction": p.direction,
            "source": p.source_text,
            "rejected (MT)": p.rejected,
            "chosen (post-edit)": p.chosen,
            "hter": p.hter,
        }
        for p in pairs
    ]
    return frame(rows, PAIR_COLUMNS)


def preview_pair_html(source: str, mt: str, post_edit: str) -> str:
    """One pair's source, MT and post-edit in three columns, then the word diff from MT to post-edit;
    every text HTML-escaped."""
    cells = "".join(
        f'<td style="vertical-align:top;width:33%">{html.escape(text)}</td>'
        for text in (source, mt, post_edit)
    )
    heads = "".join(f"<th>{h}</th>" for h in ("source", "rejected (MT)", "chosen (post-edit)"))
    diff = word_diff_html(mt, post_edit)
    return f"<table><tr>{heads}</tr><tr>{cells}</tr></table><p><strong>MT → post-edit</strong></p>{diff}"


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


# Digits each statistic is shown with: lengths to a tenth of a character, scores to a tenth of a point.
STATS_DIGITS = {
    "mean_source_chars": 1,
    "mean_chosen_chars": 1,
    "mean_rejected_chars": 1,
    "mean_hter": 3,
    "bleu": 1,
    "chrf": 1,
    "tokens_per_char": 3,
}


def stats_frame(stats: Sequence[DirectionStats]) -> pd.DataFrame:
    rows = [
        {
            k: round(v, STATS_DIGITS[k]) if k in STATS_DIGITS and v is not None else v
            for k, v in s.as_dict().items()
        }
        for s in stats
    ]
    return frame(rows, STATS_COLUMNS)


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


QUEUE_COLUMNS = [
    "id",
    "name",
    "objective",
    "status",
    "step",
    "started (UTC)",
    "elapsed",
    "ETA",
    "study",
    "error",
]


def queue_frame(found: Sequence[RunRecord], now: datetime | None = None) -> pd.DataFrame:
    """The queue: each run's progress against its planned steps, when it started, how long it has run
    and, while it runs, the time left at its pace so far."""
    now = now or datetime.now(UTC)
    rows = []
    for r in found:
        elapsed = _elapsed_seconds(r, now)
        eta = (
            eta_seconds(elapsed, r.step, r.total_steps)
            if elapsed is not None and r.status == "running"
            else None
        )
        rows.append(
            {
                "id": r.id,
                "name": r.name,
                "objective": r.config["objective"]["name"],
                "status": r.status,
                "step": f"{r.step}/{r.total_steps or '?'}",
                "started (UTC)": r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "",
                "elapsed": duration_text(elapsed),
                "ETA": duration_text(eta),
                "study": r.study_id or "",
                "error": r.error or "",
            }
        )
    return frame(rows, QUEUE_COLUMNS)


def _utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite gives them back without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _elapsed_seconds(run: RunRecord, now: datetime) -> float | None:
    """Seconds from the run's first start to its end, or to ``now`` while it has not ended."""
    if run.started_at is None:
        return None
    end = run.finished_at if run.finished_at and run.status != "running" else now
    return max((_utc(end) - _utc(run.started_at)).total_seconds(), 0.0)


def duration_text(seconds: float | None) -> str:
    """``42s``, ``3m 05s``, ``1h 02m``; empty for None."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
