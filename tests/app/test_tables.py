"""The UI's tables: real headers when empty, rounded statistics, the queue's timing, one pair side by side."""

from datetime import UTC, datetime, timedelta

from app.tables import (
    PAIR_COLUMNS,
    QUEUE_COLUMNS,
    STATS_COLUMNS,
    QueueFacts,
    duration_text,
    pairs_frame,
    preview_pair_html,
    queue_frame,
    stats_frame,
)
from capo.config import RunConfig
from capo_lab.eta import CHECKPOINT_SECONDS, EVAL_PASSES
from capo_lab.records import DatasetInfo, DirectionStats, MetricRow, RunRecord

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
# 8 steps of 8 pairs, evaluated at 4 and 8 (the train split too at 8), one checkpoint at 8
CONFIG = RunConfig.model_validate(
    {
        "name": "r",
        "model": {"name_or_path": "tiny-random-llama"},
        "data": {"dataset": "d"},
        "objective": {"name": "capo"},
        "train": {"batch_size": 8, "eval_every": 4, "checkpoint_every": 8, "max_steps": 8},
    }
).model_dump(mode="json")
DATASET = DatasetInfo(1, "d", NOW, 80, {"en-de": {"train": 64, "eval": 16}})


def run(status: str, step: int, total: int | None, started: datetime | None, **kw) -> RunRecord:
    return RunRecord(
        id=kw.pop("id", 1),
        name="r",
        config=CONFIG,
        status=status,
        dataset_id=1,
        study_id=kw.pop("study", None),
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


def timings(step: int, **seconds: float) -> list[MetricRow]:
    return [MetricRow(step, f"seconds/{phase}", value) for phase, value in seconds.items()]


def test_a_running_run_shows_start_elapsed_and_its_time_left_phase_by_phase() -> None:
    started = NOW - timedelta(seconds=160)
    # the latest row only (what the table reads), at step 2 of 8: base scoring took 80 s for 80 pairs,
    # step 0 stored 80 rows in 0.8 s, 2 steps took 60 s; the clock says 150.8 s
    latest = timings(2, loading=10, tokenizing=0, base_scoring=80, eval_scoring=0, logging_scores=0.8,
                     steps=60, checkpoints=0, total=150.8)  # fmt: skip
    facts = QueueFacts({"d": DATASET}, {1: latest}, {})
    (row,) = queue_frame([run("running", 2, 8, started.replace(tzinfo=None))], NOW, facts).to_dict("records")
    per_pass = 80 / 80  # a pair's base scoring pass: 1 s
    steps = 60 / 2 * (8 - 2)  # 180 s
    per_pair = EVAL_PASSES * per_pass + 0.8 / 80  # scored with the adapter on and stored: 1.13 s
    evaluations = 2 * 16 * per_pair + 64 * per_pair  # steps 4 and 8, the train split at 8: 108.48 s
    since_row = 160 - 150.8  # the clock's latest row was written 9.2 s ago
    left = steps + evaluations + CHECKPOINT_SECONDS - since_row  # 281.28 s
    assert (row["step"], row["started (UTC)"], row["elapsed"], row["ETA"]) == (
        "2/8",
        "2025-03-01 11:57:20",
        "2m 40s",
        duration_text(left),
    )
    assert duration_text(left) == "4m 41s"


def test_a_queued_run_gets_a_rough_eta_and_ended_or_unknown_ones_none() -> None:
    started = NOW - timedelta(hours=2)
    facts = QueueFacts({"d": DATASET}, {}, {})
    rows = queue_frame(
        [
            run("queued", 0, 8, None, id=1),
            run("succeeded", 8, 8, started, id=2, finished=started + timedelta(seconds=3725)),
            run("queued", 0, None, None, id=3),
        ],
        now=NOW,
        facts=facts,
    ).to_dict("records")
    assert rows[0]["ETA"].startswith("~") and rows[0]["ETA"] != "~"  # rough, from the config
    assert [(r["step"], r["elapsed"], r["ETA"]) for r in rows[1:]] == [("8/8", "1h 02m", ""), ("0/?", "", "")]
    assert queue_frame([run("queued", 0, 8, None)], now=NOW).to_dict("records")[0]["ETA"] == ""  # no facts


def test_the_study_column_shows_the_study_name() -> None:
    facts = QueueFacts({}, {}, {7: "alpha-sweep"})
    rows = queue_frame(
        [run("succeeded", 8, 8, None, study=7), run("succeeded", 8, 8, None, id=2)], NOW, facts
    )
    assert list(rows["study"]) == ["alpha-sweep", ""]


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


def test_the_train_tab_reads_the_latest_timings_and_the_study_names_through_the_service(
    lab_home, shared_data
) -> None:
    from app.tables import queue_table
    from capo_lab.service import LabService
    from storage import writes
    from tests.conftest import DIVEMT

    lab = LabService(enqueue=lambda run_id: None)
    lab.import_dataset("paper8-cpu", [], [str(DIVEMT)], per_direction=1)  # an upload
    smoke = lab.preset("smoke").model_dump(mode="json")
    _, (first, second) = lab.launch_study(smoke, "sweep", ["capo", "dpo"], "", "")
    with lab.db.write() as session:
        writes.update_run(session, first, status="running", started_at=NOW.replace(tzinfo=None))
        writes.add_metrics(session, first, [(0, "seconds/steps", 0.0), (0, "seconds/base_scoring", 5.0)])
    table = queue_table(lab)
    by_id = {row["id"]: row for row in table.to_dict("records")}
    assert by_id[first]["study"] == by_id[second]["study"] == "sweep"
    assert by_id[first]["ETA"] != "" and not by_id[first]["ETA"].startswith("~")  # from its own timings
    assert by_id[second]["ETA"].startswith("~")  # queued: rough, from the config
