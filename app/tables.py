"""The UI's tables: typed records from the services, formatted as DataFrames with the UI's own labels."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from app.charts import word_diff_html
from capo_lab.eta import TIMING_PREFIX, run_estimate
from capo_lab.live_metrics import ACTIVE, Seen
from capo_lab.records import DatasetInfo, DirectionStats, MetricRow, PairRecord, RunRecord, SourceStatus


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
            "hter": None if p.hter is None else round(p.hter, 3),
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


@dataclass(frozen=True)
class QueueFacts:
    """What the queue's ETA and study columns need beyond the runs: each dataset by name, the timing
    rows (``seconds/*``) of the runs that are running, and each study's name by id."""

    datasets: Mapping[str, DatasetInfo] = field(default_factory=dict)
    timings: Mapping[int, Sequence[MetricRow]] = field(default_factory=dict)
    study_names: Mapping[int, str] = field(default_factory=dict)


def queue_facts(service, found: Sequence[RunRecord]) -> QueueFacts:
    """The facts for ``found``, read through the service: only each running run's latest step's
    timing rows (``capo_lab.eta.read_clock`` needs no more), so a tick costs the same at step 10
    and at step 100,000."""
    running = {r.id: Seen(r.step, 0) for r in found if r.status == "running"}
    rows = service.metrics_since(running, list(running), [f"{TIMING_PREFIX}*"]).rows if running else {}
    return QueueFacts(
        {d.name: d for d in service.datasets()} if any(r.status in ACTIVE for r in found) else {},
        rows,
        {s.id: s.name for s in service.studies()} if any(r.study_id for r in found) else {},
    )


def queue_table(service) -> pd.DataFrame:
    """The queue as the Train tab shows it: every run, newest first, with its ETA and study name."""
    found = service.runs()
    return queue_frame(found, facts=queue_facts(service, found))


def queue_frame(
    found: Sequence[RunRecord], now: datetime | None = None, facts: QueueFacts | None = None
) -> pd.DataFrame:
    """The queue: each run's progress against its planned steps, when it started, how long it has run
    and, while it is queued or running, its time left (``capo_lab.eta``: phase by phase from its own
    timings; ``~`` marks a rough estimate from its config before it has any)."""
    now, facts = now or datetime.now(UTC), facts or QueueFacts()
    rows = []
    for r in found:
        dataset = facts.datasets.get(
            r.config.get("data", {}).get("dataset")
        )  # runs stored by hand may lack it
        left = run_estimate(r, dataset, facts.timings.get(r.id, ()), now)
        rows.append(
            {
                "id": r.id,
                "name": r.name,
                "objective": r.config["objective"]["name"],
                "status": r.status,
                "step": f"{r.step}/{r.total_steps or '?'}",
                "started (UTC)": r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "",
                "elapsed": duration_text(_elapsed_seconds(r, now)),
                "ETA": ("~" if left and left.rough else "") + duration_text(left and left.seconds),
                "study": facts.study_names.get(r.study_id, r.study_id) if r.study_id else "",
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
