"""`capo-lab evaluate`: stored generations, metrics equal to sacrebleu on them, base vs adapter."""

import json
from pathlib import Path

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER
from typer.testing import CliRunner

from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.settings import Settings
from storage import queries
from tests.conftest import DIVEMT

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout


@pytest.fixture
def trained_run(lab_home: Path, shared_data: Path) -> str:
    cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    high_lr = ["--set", "optim.lr=0.05", "--set", "train.epochs=3", "--set", "train.checkpoint_every=2"]
    return cli("train", str(SMOKE), *high_lr).strip().split()[-1]


def stored(run_id: str, step: int):
    db = Database(Settings().database_url)
    with db.read() as session:
        gens = queries.generations(session, int(run_id), "eval", step)
        metrics = {m.key: m.value for m in queries.metrics(session, int(run_id), step - 1) if m.step == step}
        pairs = {p.pair_id: p for p in queries.list_pairs(session, 1, split="eval")}
    return gens, metrics, pairs


@pytest.mark.slow
def test_stored_metrics_equal_sacrebleu_on_the_stored_strings(trained_run: str) -> None:
    report = json.loads(cli("evaluate", trained_run, "--base", "--max-new-tokens", "12", "--format", "json"))
    step = report["step"]
    gens, metrics, pairs = stored(trained_run, step)
    by_model = {m: [g for g in gens if g.model == m] for m in ("adapter", "base")}
    assert len(by_model["adapter"]) == len(by_model["base"]) == len(pairs) == report["n_sentences"] == 6
    hyps = [g.text for g in by_model["adapter"]]
    refs = [pairs[g.pair_id].chosen for g in by_model["adapter"]]
    mts = [pairs[g.pair_id].rejected for g in by_model["adapter"]]
    prefix = "eval_translation/"
    assert metrics[prefix + "chrf"] == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    assert metrics[prefix + "bleu"] == pytest.approx(BLEU(tokenize="13a").corpus_score(hyps, [refs]).score)
    assert metrics[prefix + "ter"] == pytest.approx(TER().corpus_score(hyps, [refs]).score)
    assert metrics[prefix + "chrf_vs_mt"] == pytest.approx(CHRF().corpus_score(hyps, [mts]).score)
    base_hyps = [g.text for g in by_model["base"]]
    assert metrics[prefix + "base_chrf"] == pytest.approx(CHRF().corpus_score(base_hyps, [refs]).score)
    assert base_hyps != hyps  # a high learning rate moved the adapter's translations
    assert 0 < metrics[prefix + "p_chrf"] <= 1 and 0 < metrics[prefix + "p_chrf/en-it"] <= 1
    truncated = sum(g.truncated for g in by_model["adapter"])
    assert metrics[prefix + "truncated"] == truncated == report["truncated"]["adapter"]


@pytest.mark.slow
def test_table_reports_truncation_and_bad_steps_name_the_ones_with_an_adapter(trained_run: str) -> None:
    table = cli("evaluate", trained_run, "--max-new-tokens", "3")
    assert "6 truncated (adapter)" in table and "s per sentence" in table
    assert "BLEU" in table and "COMET" not in table
    missing = runner.invoke(app, ["evaluate", trained_run, "--step", "1"])
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: run {trained_run} has no adapter at step 1; steps with one: 2, 3"  # 3 epochs of one step
    )


@pytest.mark.slow
def test_generate_at_end_and_a_queued_job_record_progress(lab_home: Path, shared_data: Path) -> None:
    from capo_lab.translations import queue_evaluation
    from worker.evaluate import run_evaluation

    cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    at_end = ["--set", "train.generate_at_end=true", "--set", "train.generate_max_new_tokens=4"]
    splits = ["--set", "train.eval_splits=[eval, validation]", "--set", "train.epochs=1"]
    run_id = int(cli("train", str(SMOKE), *at_end, *splits).strip().split()[-1])
    settings = Settings()
    db = Database(settings.database_url)
    with db.read() as session:
        jobs = queries.evaluations(session, run_id)
    assert sorted((j.split, j.status, j.done, j.total, j.evaluated_step) for j in jobs) == [
        ("eval", "succeeded", 12, 12, 1),
        ("validation", "succeeded", 12, 12, 1),
    ]  # fmt: skip  (6 sentences × adapter and base, at the last step)
    queued = []
    job_id = queue_evaluation(db, run_id, queued.append, "last", "eval", base=False, max_new_tokens=2)
    assert queued == [job_id] and run_evaluation(db, settings, job_id) == "succeeded"
    assert run_evaluation(db, settings, job_id).startswith("skipped")  # claimed once only
    with db.read() as session:
        job = queries.get_evaluation(session, job_id)
    assert (job.status, job.done, job.total) == ("succeeded", 6, 6)


@pytest.mark.slow
def test_comet_from_a_local_checkpoint_is_scored_stored_and_shown(trained_run: str, tiny_comet: Path) -> None:
    from capo.comet_metric import CometScorer

    table = cli(
        "evaluate", trained_run, "--base", "--max-new-tokens", "4", "--metrics", "chrf,comet",
        "--comet-checkpoint", str(tiny_comet),
    )  # fmt: skip
    assert "COMET" in table and "chrF" in table and "BLEU" not in table
    step = int(table.split("step ")[1].split(",")[0])
    gens, metrics, pairs = stored(trained_run, step)
    scorer = CometScorer(tiny_comet)
    for model, prefix in (("adapter", ""), ("base", "base_")):
        mine = [g for g in gens if g.model == model]
        segments = [(pairs[g.pair_id].source_text, g.text, pairs[g.pair_id].chosen) for g in mine]
        assert metrics[f"eval_translation/{prefix}comet"] == pytest.approx(
            sum(scorer.scores(segments)) / 6, abs=1e-6
        )
    assert 0 < metrics["eval_translation/p_comet"] <= 1
    assert "eval_translation/bleu" not in metrics  # not asked for, not stored


def test_bad_metrics_and_a_missing_comet_checkpoint_are_one_line_before_any_work(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAPO_LAB_COMET_CHECKPOINT", raising=False)
    for args, line in [
        (["--metrics", "chrf,bleurt"], "error: unknown metric bleurt: choose from chrf, bleu, ter, comet"),
        (["--metrics", "comet"], "error: no COMET checkpoint: pass --comet-checkpoint PATH"),
        (
            ["--metrics", "comet", "--comet-checkpoint", "/nowhere"],
            "error: COMET checkpoint '/nowhere' not found",
        ),
    ]:
        result = runner.invoke(app, ["evaluate", "1", *args])
        assert result.exit_code == 1
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(line), result.stderr


def test_the_table_shows_each_difference_even_below_the_printed_precision() -> None:
    from capo_lab.cli.evaluate import _pair

    assert _pair(40.0, 44.0) == "40.00 → 44.00 (+4.00)"
    assert _pair(0.0, 0.0017) == "0.00 → 0.00 (+0.002)"  # "0.00 → 0.00" alone hid a real difference
    assert _pair(12.5, 12.5) == "12.50 → 12.50 (0)"
    assert _pair(None, 3.0) == "3.00"
