"""The UI's tables: real headers when empty, rounded statistics, the queue's timing, one pair side by side."""

from datetime import UTC, datetime, timedelta

import pytest

from app.tables import (
    PAIR_COLUMNS,
    QUEUE_COLUMNS,
    STATS_COLUMNS,
    duration_text,
    pairs_frame,
    preview_pair_html,
    queue_frame,
    stats_frame,
)
from capo.schedule import eta_seconds
from capo_lab.records import DirectionStats, RunRecord

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def run(status: str, step: int, total: int | None, started: datetime | None, **kw) -> RunRecord:
    return RunRecord(
        id=kw.pop("id", 1),
        name="r",
        config={"objective": {"name": "capo"}},
        status=status,
        dataset_id=1,
        study_id=None,
        created_at=NOW - timedelta(hours=1),
        started_at=started,
        finished_at=kw.pop("finished", None),
        heartbeat_at=None,
        step=step,
        total_steps=total,
        resumed_from_step=None,
        error=None,
        traceback=None,
        notes=[],
    )


def test_empty_tables_show_their_headers_not_placeholders() -> None:
    assert list(pairs_frame([]).columns) == PAIR_COLUMNS
    assert list(stats_frame([]).columns) == STATS_COLUMNS
    assert list(queue_frame([]).columns) == QUEUE_COLUMNS


def test_mt_and_post_edit_sit_side_by_side() -> None:
    assert PAIR_COLUMNS.index("chosen (post-edit)") == PAIR_COLUMNS.index("rejected (MT)") + 1


def test_statistics_are_rounded_per_column() -> None:
    stats = DirectionStats(
        "en-de", 7, 1, 101.23456, 98.7654, 90.55555, 0.123456, 34.56789, 61.2345, 0.2834567
    )
    (row,) = stats_frame([stats]).to_dict("records")
    assert (row["mean_source_chars"], row["mean_chosen_chars"], row["mean_rejected_chars"]) == (
        101.2,
        98.8,
        90.6,
    )
    assert (row["mean_hter"], row["bleu"], row["chrf"], row["tokens_per_char"]) == (0.123, 34.6, 61.2, 0.283)
    assert (row["pairs"], row["ties"]) == (7, 1)
    no_tokenizer = DirectionStats("en-it", 2, 0, 1.0, 1.0, 1.0, None, 1.0, 1.0)
    assert stats_frame([no_tokenizer]).to_dict("records")[0]["mean_hter"] is None


def test_a_running_run_shows_start_elapsed_and_eta() -> None:
    started = NOW - timedelta(minutes=10)
    (row,) = queue_frame([run("running", 20, 80, started.replace(tzinfo=None))], now=NOW).to_dict("records")
    # 600 s for 20 steps: 30 s a step, 60 steps left → 1800 s
    assert (row["step"], row["started (UTC)"], row["elapsed"], row["ETA"]) == (
        "20/80",
        "2025-03-01 11:50:00",
        "10m 00s",
        "30m 00s",
    )


def test_queued_finished_and_first_step_runs_have_no_eta() -> None:
    started = NOW - timedelta(hours=2)
    rows = queue_frame(
        [
            run("queued", 0, 40, None, id=1),
            run("succeeded", 40, 40, started, id=2, finished=started + timedelta(seconds=3725)),
            run("running", 0, 40, NOW - timedelta(seconds=5), id=3),
        ],
        now=NOW,
    ).to_dict("records")
    assert [(r["step"], r["elapsed"], r["ETA"]) for r in rows] == [
        ("0/40", "", ""),
        ("40/40", "1h 02m", ""),
        ("0/40", "5s", ""),
    ]


@pytest.mark.parametrize(
    ("elapsed", "step", "total", "left"),
    [(100.0, 10, 30, 200.0), (100.0, 0, 30, None), (100.0, 5, None, None), (100.0, 40, 30, 0.0)],
)
def test_eta_is_elapsed_per_step_times_steps_left(elapsed, step, total, left) -> None:
    assert eta_seconds(elapsed, step, total) == left


def test_durations_read_as_seconds_minutes_or_hours() -> None:
    assert [duration_text(s) for s in (None, 0.4, 59, 61, 3599, 3600, 7322)] == [
        "",
        "0s",
        "59s",
        "1m 01s",
        "59m 59s",
        "1h 00m",
        "2h 02m",
    ]


def test_one_pair_side_by_side_with_its_diff_escaped() -> None:
    shown = preview_pair_html("The <img src=x> cat", "Die <script>x</script> Katze", "Die Katze")
    assert "<img" not in shown and "<script>" not in shown
    assert "The &lt;img src=x&gt; cat" in shown
    assert shown.index("rejected (MT)") < shown.index("chosen (post-edit)")
    assert "<del>&lt;script&gt;x&lt;/script&gt;</del>" in shown  # the word diff: MT's extra word struck
