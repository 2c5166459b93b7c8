"""The study report's section per benchmark suite, from stored rows: arms compared on the same items
with seeds matched by value (the base matches every seed), Holm within the section's families, the
smallest detectable difference when not significant; the judge's unjudged items counted apart and an
always-"Answer (A)" judge giving only ties and 100 % inconsistency."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from capo.analysis.stats import minimum_detectable_effect
from capo.benchmarks.items import parse_xlsum
from capo_lab import lifecycle
from capo_lab.benchmark_scoring import store_and_score
from capo_lab.benchmarks import StudyRun, get_benchmark, study_benchmark_sections
from capo_lab.judge import JudgeSettings, make_judge
from capo_lab.report_html import render
from capo_lab.report_text import render_text
from storage import writes
from tests.benchmarks.conftest import chat_server  # noqa: F401  (a fixture)
from tests.benchmarks.test_benchmark_sources import jsonl
from tests.benchmarks.test_benchmark_suites import XLSUM_EN, XLSUM_ZH
from tests.capo_lab.report_sample import sample_report
from tests.worker.conftest import lab, tiny_config  # noqa: F401  (a fixture)

REQUEST = {
    "step": "last", "languages": ["en"], "limit": None, "seed": 0, "max_new_tokens": 64, "temperature": 0.7,
    "template": "zephyr", "judge_requests": 0,
}  # fmt: skip


def _runs(db, arms_and_seeds) -> list[StudyRun]:
    ids = lifecycle.submit(db, [tiny_config(seed=s) for _, s in arms_and_seeds], lambda _: None)
    return [StudyRun(i, f"<i>{a}</i> seed {s}", a, s) for i, (a, s) in zip(ids, arms_and_seeds, strict=True)]


def _job(db, run_id: int, suite: str, rows: list[dict], base: bool = False, **request) -> int:
    """A succeeded job with the given per-item score rows."""
    with db.write() as session:
        job = writes.add_benchmark(session, run_id, {**REQUEST, "suite": suite, "base": base, **request})
        writes.update_benchmark(session, job, status="succeeded", evaluated_step=2, done=4, total=4)
        writes.replace_benchmark_scores(session, job, run_id, rows)
    return job


def _strict(arm: str, values: list[int]) -> list[dict]:
    return [
        {
            "language": "en",
            "item_id": str(i),
            "arm": arm,
            "metric": "prompt_strict",
            "value": float(v),
            "detail": {},
        }
        for i, v in enumerate(values, 1)
    ]


def test_scores_differences_and_holm_from_stored_rows(lab) -> None:  # noqa: F811
    db, _ = lab
    runs = _runs(db, [("capo", 0), ("capo", 1), ("dpo", 0)])
    _job(
        db, runs[0].run_id, "m-ifeval", _strict("adapter", [1, 1, 1, 0]) + _strict("base", [0, 0, 0, 0]), True
    )
    _job(db, runs[1].run_id, "m-ifeval", _strict("adapter", [1, 1, 0, 0]))
    _job(db, runs[2].run_id, "m-ifeval", _strict("adapter", [0, 1, 0, 0]))
    (section,) = study_benchmark_sections(db, runs)
    assert section.suite == "m-ifeval" and section.arms == ["capo", "dpo", "base"]
    assert section.unit.startswith("the item")
    cell = next(c for c in section.cells if (c.arm, c.language) == ("capo", "all"))
    # item seed means (1+1)/2, (1+1)/2, (1+0)/2, (0+0)/2 = 1, 1, 0.5, 0: mean 2.5 / 4
    assert cell.interval.estimate == pytest.approx(2.5 / 4)
    assert (cell.interval.n, cell.interval.seeds) == (4, 2)
    rows = {(c.arm_a, c.arm_b): c for c in section.comparisons if c.language == "all"}
    capo_dpo = rows[("capo", "dpo")]  # seed 0 only (dpo has no seed 1): 1,1,1,0 − 0,1,0,0 = 1,0,1,0
    assert capo_dpo.difference.estimate == pytest.approx(2 / 4) and capo_dpo.difference.seeds == 1
    assert (capo_dpo.only_a, capo_dpo.only_b, capo_dpo.p_value) == (2, 0, pytest.approx(2 * 0.5**2))
    assert capo_dpo.mde == pytest.approx(minimum_detectable_effect(4, (1 + 0 + 1 + 0) / 4))
    capo_base = rows[("capo", "base")]  # base against both seeds: 1,1,0.5,0 − 0 = 0.625
    assert capo_base.difference.estimate == pytest.approx(0.625)
    # sign flips of weights 2, 2, 1 (differences × 2 seeds): |sum| ≥ 5 in 2 of 8 sign patterns
    assert capo_base.p_value == pytest.approx(2 / 8)
    dpo_base = rows[("dpo", "base")]
    assert (dpo_base.difference.estimate, dpo_base.p_value) == (pytest.approx(1 / 4), pytest.approx(1.0))
    # Holm over the three "all" rows: 0.25 × 3 = 0.75, then max(0.75, 0.5 × 2) = 1, then 1
    assert [capo_base.p_holm, capo_dpo.p_holm, dpo_base.p_holm] == pytest.approx([0.75, 1.0, 1.0])
    assert any(job.startswith("<i>capo</i> seed 1: benchmark 2, step 2") for job in section.jobs)


def test_a_job_decoded_otherwise_is_named_and_left_out(lab) -> None:  # noqa: F811
    db, _ = lab
    runs = _runs(db, [("capo", 0), ("dpo", 0)])
    _job(db, runs[0].run_id, "m-ifeval", _strict("adapter", [1, 1, 1, 0]))
    _job(db, runs[1].run_id, "m-ifeval", _strict("adapter", [0, 1, 0, 0]), temperature=0.0)  # the newest
    (section,) = study_benchmark_sections(db, runs)
    assert section.arms == ["dpo"]
    assert any(note.startswith("<i>capo</i> seed 0: left out") for note in section.notes)
    assert section.comparisons == []


def _xlsum_items():
    return parse_xlsum(jsonl(XLSUM_EN).decode(), "en") + parse_xlsum(jsonl(XLSUM_ZH).decode(), "zh")


def _judged_job(db, run_id: int, judge) -> int:
    """An XLSum job whose adapter answers the reference and the base "News.", scored with ``judge``."""
    items = _xlsum_items()
    job = _job(db, run_id, "xlsum", [], True, languages=["en", "zh"])
    rows = [
        {"language": i.language, "item_id": i.item_id, "arm": arm, "turn": 1, "prompt": "p",
         "output": i.reference[0] if arm == "adapter" else "News.", "n_tokens": 1, "truncated": False,
         "max_new_tokens": 64, "temperature": 0.7, "seed": 5, "template": "zephyr"}
        for i in items for arm in ("adapter", "base")
    ]  # fmt: skip
    with db.write() as session:
        writes.add_benchmark_generations(session, job, run_id, rows)
    store_and_score(db, get_benchmark(db, job), 2, items, judge)
    return job


def _judge(chat_server, reply):  # noqa: F811
    chat_server.reply = reply
    return make_judge(JudgeSettings(url=chat_server.url, model="judge", backoff_seconds=0))


def test_an_always_answer_a_judge_gives_only_ties_and_full_inconsistency(lab, chat_server) -> None:  # noqa: F811
    db, _ = lab
    runs = _runs(db, [("capo", 0), ("dpo", 0)])
    for run in runs:
        _judged_job(
            db, run.run_id, _judge(chat_server, lambda messages: "Comparison: A.\nPreferred: Answer (A)")
        )
    (section,) = study_benchmark_sections(db, runs)
    overall = [r for r in section.judge if r.language == "all"]
    assert [r.arm for r in overall] == ["capo", "dpo"]
    for row in overall:  # 3 items (e1, e2, z1), each "A" in both orders: a tie that flipped
        c = row.comparison
        assert (c.judged, c.wins, c.losses, row.ties, row.unjudged) == (3, 0, 0, 3, 0)
        assert (row.inconsistent, row.verdicts, row.inconsistency_rate) == (3, 3, 1.0)
        assert (c.win_rate.estimate, c.net.estimate, c.p_value) == (0.0, 0.0, 1.0)
    report = replace(sample_report(), benchmarks=[section])
    as_json = json.loads(json.dumps(asdict(report), default=str))  # capo-lab report --format json
    assert [r["inconsistency_rate"] for r in as_json["benchmarks"][0]["judge"] if r["language"] == "all"] == [
        1,
        1,
    ]
    text = render_text(report)
    assert "won 0 / tie verdicts 3 / lost 0" in text and "inconsistent 3 of 3 verdicts (100%)" in text
    assert "significant after Holm" not in text.split("Benchmark xlsum")[1]


def test_unjudged_items_are_counted_apart_never_as_wins_or_losses(lab, chat_server) -> None:  # noqa: F811
    db, _ = lab
    (run,) = _runs(db, [("capo", 0)])

    def reply(messages):  # z1 (Chinese) gets no verdict; the others prefer the reference, both orders
        content = messages[0]["content"]
        if "北京" in content:
            return "I cannot decide."
        return "Preferred: Answer (B)" if "Answer (A): News." in content else "Preferred: Answer (A)"

    _judged_job(db, run.run_id, _judge(chat_server, reply))
    (section,) = study_benchmark_sections(db, [run])
    rows = {r.language: r for r in section.judge}
    overall = rows["all"]
    assert (overall.comparison.judged, overall.unjudged) == (2, 1)  # 3 items: 2 judged + 1 unjudged
    assert (overall.comparison.wins, overall.comparison.losses, overall.inconsistent) == (2, 0, 0)
    assert overall.comparison.win_rate.estimate == 2 / 2
    assert (rows["zh"].comparison, rows["zh"].unjudged, rows["zh"].inconsistency_rate) == (None, 1, None)
    assert rows["en"].comparison.judged == 2  # zh: nothing judged, its one item unjudged
    text = render_text(replace(sample_report(), benchmarks=[section]))
    assert "judge, capo vs base, zh: 1 unjudged (counted as neither wins nor losses); no item judged" in text


def test_the_report_shows_each_suite_escaped_with_the_detectable_difference(lab) -> None:  # noqa: F811
    db, _ = lab
    runs = _runs(db, [("capo", 0), ("dpo", 0)])
    _job(db, runs[0].run_id, "m-ifeval", _strict("adapter", [1, 1, 1, 0]))
    _job(db, runs[1].run_id, "m-ifeval", _strict("adapter", [0, 1, 0, 0]))
    (section,) = study_benchmark_sections(db, runs)
    report = replace(sample_report(), benchmarks=[section])
    text = render_text(report)
    mde = minimum_detectable_effect(4, 2 / 4)
    assert f"could not detect differences smaller than {mde:.3f}" in text
    assert "prompt_strict, capo − dpo, all languages: +0.500" in text and "n = 4 items" in text
    page = render(report)
    assert '<section id="benchmark-m-ifeval">' in page
    assert "&lt;i&gt;capo&lt;/i&gt; seed 0" in page and "<i>capo</i>" not in page
