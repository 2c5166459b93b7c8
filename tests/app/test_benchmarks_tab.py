"""The Benchmarks tab's events, called as the browser calls them (by elem_id and event) on a built app
over a real SQLite database: the plan line before queueing, a queued job followed by a timer that
ticks only while a job is active and this tab is shown, cancelling, the scores per language and the
paired comparisons with their intervals, the item inspector (answers, checks, verdicts in both
orders), every hostile text escaped, and one line for every bad choice."""

from __future__ import annotations

import gradio as gr
import pytest

from app.benchmarks_items import item_html
from app.benchmarks_view import JOB_COLUMNS
from app.common import markdown_text
from app.main import build_app
from app.tab_benchmarks import REFRESH_SECONDS
from capo.benchmarks.ifeval import InstructionResult
from capo_lab.benchmarks import ItemView
from capo_lab.service import LabService
from storage import writes
from tests.app.test_benchmark_service import (  # noqa: F401  (lab and lab_service are fixtures)
    answer,
    lab,
    lab_service,
    score,
    store_job,
    with_adapter,
    xlsum_job,
)
from tests.app.test_escaping import HOSTILE, IMG, SCRIPT
from tests.app.ui_events import SKIP, by_id, run

PLAN_INPUTS = ("m-ifeval", ["en", "ja"], None, True)


@pytest.fixture
def tab(lab_service):  # noqa: F811
    """(the built app, its service, the ids the queue was given, a run with an adapter)."""
    service, queued, run_id = lab_service
    return build_app(service), service, queued, run_id


def pick_run(demo, run_id) -> dict:
    return by_id(*run(demo, "benchmark-run", "input", run_id))


def choices(update) -> list:
    return [value for _, value in update.choices]


def test_choosing_a_run_shows_its_finished_job_with_scores_intervals_and_verdicts(tab):
    demo, service, _, run_id = tab
    job = xlsum_job(service, run_id)
    outputs, values = run(demo, "benchmark-run", "input", run_id)
    shown = by_id(outputs, values)
    assert values[-2] == (job, "succeeded")  # the state: the scores were drawn at that status
    assert list(shown["benchmark-jobs"].columns) == JOB_COLUMNS
    assert shown["benchmark-jobs"].to_dict("records") == [
        {"job": job, "suite": "xlsum", "languages": "en, zh", "items": "all", "base": "yes",
         "step": "last → 2", "decoding": "greedy, ≤ 64 tokens, seed 0", "status": "succeeded",
         "progress": "3/3 items", "judge": "none", "note": ""}
    ]  # fmt: skip
    assert shown["benchmark-job"].value == job and shown["benchmark-other"].value == "base"
    metrics = shown["benchmark-metrics"].to_dict("records")
    assert metrics == [{"metric": "rouge_l", "en": "0.375", "all": "0.500"}]
    overall = shown["benchmark-comparison"].to_dict("records")[-1]
    assert (overall["language"], overall["A"], overall["B"]) == ("all", f"run {run_id}", f"run {run_id} base")
    assert overall["mean A"] == f"{(0.5 + 0.25 + 0.75) / 3:.3f}" and overall["mean B"] == f"{1 / 3:.3f}"
    assert overall["A − B"] == f"{(0.5 + 0.25 + 0.75) / 3 - 1 / 3:+.3f}"
    assert overall["95 % interval"].startswith("[") and overall["items"] == 3
    verdicts = shown["benchmark-verdicts"].to_dict("records")
    assert [(v["language"], v["judged"], v["adapter wins"], v["base wins"], v["ties"]) for v in verdicts] == [
        ("en", 2, 1, 0, 1),  # e1 won, e2 a tie; zh's item unjudged: no row, never a win or a loss
        ("all", 2, 1, 0, 1),
    ]
    assert verdicts[0]["win rate"] == f"{1 / 2:.3f}"
    assert choices(shown["benchmark-item"]) == ["en/e1", "en/e2", "zh/z1"]
    assert "A summary. (adapter)" in shown["benchmark-item-view"]
    assert shown["benchmark-message"] == ""


def test_the_timer_ticks_only_while_a_job_is_active_and_the_tab_is_shown(tab):
    demo, service, queued, run_id = tab
    timer_index = 0  # the first output of every job event
    outputs, values = run(demo, "queue-benchmark", "click", run_id, *PLAN_INPUTS)
    assert isinstance(outputs[timer_index], gr.Timer) and outputs[timer_index].value == REFRESH_SECONDS
    assert values[timer_index].active is True and len(queued) == 1
    shown = by_id(outputs, values)
    expected = f"Queued benchmark #{queued[0]}: run #{run_id}, m-ifeval (en, ja), all items."
    assert shown["benchmark-message"] == markdown_text(expected)
    assert shown["benchmark-jobs"]["status"].tolist() == ["queued"]
    drawn = values[-2]
    assert drawn == (queued[0], "queued")
    tick = tick_of(demo, outputs[timer_index])
    _, again = tick(run_id, queued[0], drawn, None, None)
    assert again[timer_index].active is True and again[3:-1] == [SKIP] * 8  # the scores not read again
    with service.db.write() as session:
        writes.update_benchmark(session, queued[0], status="succeeded", evaluated_step=2, done=3)
    _, ended = tick(run_id, queued[0], drawn, None, None)
    assert ended[timer_index].active is False and ended[-2] == (queued[0], "succeeded")
    assert "is succeeded: 3/3 items answered" in ended[4]  # the state line, read once more
    stops = [f for f in timer_stops(demo, outputs[timer_index])]
    assert len(stops) == len(tab_ids(demo)) - 1  # every tab but this one stops it
    assert all(f.fn().active is False for f in stops)


def tick_of(demo, timer):
    handler = next(f for f in demo.fns.values() if (timer._id, "tick") in [tuple(t) for t in f.targets])
    return lambda *args: (handler.outputs, list(handler.fn(*args)))


def tab_ids(demo) -> list:
    return [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]


def timer_stops(demo, timer) -> list:
    """The handlers run when a tab is chosen whose only output is the benchmarks timer."""
    tabs = {t._id for t in tab_ids(demo)}
    return [
        f
        for f in demo.fns.values()
        if f.outputs == [timer] and any(tuple(t)[1] == "select" and tuple(t)[0] in tabs for t in f.targets)
    ]


def test_cancelling_a_queued_job(tab):
    demo, service, queued, run_id = tab
    run(demo, "queue-benchmark", "click", run_id, "m-ifeval", ["ja"], 1, False)
    shown = by_id(*run(demo, "cancel-benchmark", "click", run_id, queued[0], None, None))
    assert shown["benchmark-message"] == markdown_text(
        f"Benchmark #{queued[0]}: cancelled before it started."
    )
    assert shown["benchmark-jobs"]["status"].tolist() == ["cancelled"]
    again = by_id(*run(demo, "cancel-benchmark", "click", run_id, queued[0], None, None))
    assert again["benchmark-message"].startswith("⚠️ benchmark ") and "\n" not in again["benchmark-message"]
    assert again["benchmark-jobs"] == SKIP


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (("m-ifeval", ["de"], None, True), "m-ifeval has no language 'de'; choose from en, es, fr, ja"),
        (("hellaswag", [], None, True), "unknown suite 'hellaswag'; choose from m-ifeval, xlsum, mt-bench"),
        (("m-ifeval", [], 0, True), "the item limit must be a whole number from 1 to 2^63 - 1, got 0"),
        (("m-ifeval", ["es"], None, True), "m-ifeval:es is not fetched; run `capo-lab data fetch"),
    ],
)
def test_bad_choices_are_one_line_and_queue_nothing(tab, inputs, message):
    demo, service, queued, run_id = tab
    message = "⚠️ " + markdown_text(message)
    outputs, values = run(demo, "queue-benchmark", "click", run_id, *inputs)
    assert values[-1].startswith(message) and "\n" not in values[-1]
    assert values[:-1] == [SKIP] * (len(values) - 1) and queued == []
    plan = by_id(*run(demo, "benchmark-languages", "input", *inputs))["benchmark-plan"]
    assert plan.startswith(message) and "\n" not in plan


def test_without_a_run_or_a_queue_one_line_says_why(tab):
    demo, service, _, run_id = tab
    assert run(demo, "queue-benchmark", "click", None, *PLAN_INPUTS)[1][-1] == "⚠️ choose a run first"
    reader = build_app(LabService(service.settings))
    refused = run(reader, "queue-benchmark", "click", run_id, *PLAN_INPUTS)[1][-1]
    assert refused == "⚠️ this lab service has no job queue: it can only read"
    gone = pick_run(demo, 999)
    assert gone["benchmark-message"].startswith("⚠️ no run 999")
    assert gone["benchmark-jobs"].empty and gone["benchmark-item-view"].startswith("<p>Choose an item")


def test_the_plan_line_before_queueing_names_the_items_and_the_judge(tab, monkeypatch):
    demo, _, _, _ = tab
    languages, plan = run(demo, "benchmark-suite", "input", "xlsum", None, True)[1]
    assert choices(languages) == ["en", "zh", "vi", "ar", "uk", "tr", "fr", "ja", "es"]
    assert plan.startswith(
        "⚠️ " + markdown_text("xlsum:vi is not fetched")
    )  # all languages, and only en and zh are here
    _, plan = run(demo, "benchmark-languages", "input", "xlsum", ["en", "zh"], None, True)[1]
    decoding = markdown_text("sampled at temperature 0.7 (the paper's setting)")
    head = f"**3 items** \\(en, zh\\), answered by the adapter and base, {decoding}; no judge configured"
    assert plan.startswith(head)
    monkeypatch.setenv("CAPO_LAB_JUDGE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CAPO_LAB_JUDGE_MODEL", "judge")
    _, plan = run(demo, "benchmark-limit", "input", "xlsum", ["en", "zh"], 1, True)[1]
    assert "gets up to 4 requests" in plan  # 2 orders × 2 items (1 en, 1 zh) × one arm pair


def test_the_adapter_against_another_runs_job(tab):
    demo, service, _, run_id = tab
    job = xlsum_job(service, run_id)
    other_run = with_adapter(service)
    other = xlsum_job(service, other_run, base=False, rouge={("en", "e1"): (0.25,), ("en", "e2"): (0.25,)})
    shown = pick_run(demo, run_id)
    assert choices(shown["benchmark-other"]) == ["base", str(other)]
    versus = by_id(*run(demo, "benchmark-other", "input", run_id, job, str(other), "en/e2"))
    rows = versus["benchmark-comparison"].to_dict("records")
    assert [(r["language"], r["B"], r["mean A"], r["mean B"], r["items"]) for r in rows] == [
        ("en", f"run {other_run} adapter", "0.375", "0.250", 2),  # zh: answered by one job only
        ("all", f"run {other_run} adapter", "0.375", "0.250", 2),
    ]
    assert rows[-1]["only one arm"] == 1 and versus["benchmark-verdicts"].empty
    assert versus["benchmark-item"].value == "en/e2"  # the item picked stays
    picked = by_id(*run(demo, "benchmark-item", "input", job, "zh/z1"))
    assert "<h4>zh · item z1</h4>" in picked["benchmark-item-view"] and picked["benchmark-message"] == ""
    assert "base shown as Answer (A): B → adapter" in picked["benchmark-item-view"]
    assert "adapter shown as Answer (A): malformed (no verdict read)" in picked["benchmark-item-view"]
    alone = by_id(*run(demo, "benchmark-job", "input", other_run, other))
    assert choices(alone["benchmark-other"]) == [str(job)]  # no base of its own; the other run's job


def test_hostile_texts_reach_the_page_escaped(tab):
    demo, service, _, run_id = tab
    checks = [asdict_check(f"en:{SCRIPT}", HOSTILE)]
    job = store_job(
        service, run_id, "m-ifeval",
        [answer("en", IMG, "adapter", HOSTILE, prompt=SCRIPT), answer("en", IMG, "base", SCRIPT)],
        [score("en", IMG, "adapter", "prompt_strict", 0.0, {"instructions": checks})],
        note=HOSTILE,
    )  # fmt: skip
    shown = pick_run(demo, run_id)
    page = shown["benchmark-item-view"] + shown["benchmark-state"]
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in shown["benchmark-item-view"]
    assert "✗ failed" in shown["benchmark-item-view"]  # the check's strict verdict
    assert shown["benchmark-jobs"]["note"].tolist() == [HOSTILE]  # a Dataframe shows text as text
    assert choices(shown["benchmark-item"]) == [f"en/{IMG}"] and shown["benchmark-job"].value == job


def asdict_check(instruction_id: str, note: str) -> dict:
    from dataclasses import asdict

    return asdict(InstructionResult(instruction_id, "checked", False, True, note))


def test_the_inspector_shows_both_orders_checks_and_ratings():
    verdicts = {"first": "A", "second": "A", "outcome": "tie", "inconsistent": True, "note": ""}
    item = ItemView(
        "de", "81",
        {"adapter": ("<p1>", "<p2>"), "base": ("<p1>", "<p2 base>")},
        {"adapter": ("Haiku", "Französisch"), "base": ("Base",)},
        {
            "adapter/judge_vs_base": {"value": 0.5, "detail": verdicts},
            "adapter/rating": {"value": 7.5, "detail": {"ratings": [8.0, 7.0], "note": ""}},
            "base/rating": {"value": None, "detail": {"ratings": [5.0, None], "note": "malformed rating"}},
        },
    )  # fmt: skip
    shown = item_html(item)
    assert "adapter shown as Answer (A): A → adapter" in shown
    assert "base shown as Answer (A): A → base" in shown
    assert "outcome: a tie (the two orders disagree: counted as a tie, inconsistent)" in shown
    assert (
        "adapter: turn 1: 8.0, turn 2: 7.0" in shown
        and "base: turn 1: 5.0, turn 2: — (malformed rating)" in shown
    )
    assert (
        shown.count("<th>Turn 2 answer</th>") == 1 and "<td>—</td>" in shown
    )  # the base's second turn is missing
    assert "&lt;p2 base&gt;" in shown


def test_coming_back_to_the_tab_reads_the_runs_and_the_jobs_afresh(tab):
    demo, service, _, run_id = tab
    benchmarks_tab = next(t for t in tab_ids(demo) if t.id == "benchmarks")
    on_select = [
        f for f in demo.fns.values() if (benchmarks_tab._id, "select") in [tuple(t) for t in f.targets]
    ]
    kept, plan = on_select  # the run list kept, then the plan line said again
    listed = kept.fn(run_id)
    assert listed.value == run_id and run_id in choices(listed)
    assert kept.fn(999).value is None  # a run deleted meanwhile is no longer picked
    assert plan.fn(*PLAN_INPUTS).startswith("**3 items**")
    job = xlsum_job(service, run_id)  # finished while the tab was away
    then = next(f for f in demo.fns.values() if f.trigger_after == kept._id)
    shown = by_id(then.outputs, list(then.fn(run_id, None, None, None)))
    assert shown["benchmark-job"].value == job and shown["benchmark-jobs"]["status"].tolist() == ["succeeded"]
