"""`capo-lab benchmark` on the tiny model, end to end: the suites' files fetched by name from a loopback
server in each upstream's layout, answers stored per item with their settings, scores as run metrics
equal to the suites' scoring of the stored answers, a judge on loopback, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from capo.benchmarks.suites import item_seed, mifeval_metrics, score_mifeval
from capo_lab.benchmark_sources import load_benchmark
from capo_lab.cli import app as lab_app
from capo_lab.cli.benchmark import benchmark_command
from capo_lab.database import Database
from capo_lab.settings import Settings
from storage import queries
from tests.benchmarks.conftest import chat_server, static_server  # noqa: F401  (fixtures)
from tests.benchmarks.test_benchmark_suites import serve_suites
from tests.conftest import DIVEMT

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()
app = typer.Typer()  # until `capo-lab benchmark` is registered in capo_lab.cli
app.command("benchmark")(benchmark_command)


@app.callback()
def _group() -> None:
    """Keeps ``benchmark`` a subcommand."""


def cli(*args: str, command: typer.Typer = lab_app) -> str:
    result = runner.invoke(command, list(args))
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout


def benchmark(*args: str) -> dict:
    out = cli("benchmark", *args, "--max-new-tokens", "4", "--format", "json", command=app)
    assert out.startswith("{"), out
    return json.loads(out)


@pytest.fixture
def served(static_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    serve_suites(static_server, monkeypatch)
    for var in ("URL", "MODEL"):
        monkeypatch.delenv(f"CAPO_LAB_JUDGE_{var}", raising=False)


@pytest.fixture
def trained_run(lab_home: Path, shared_data: Path, served) -> str:
    cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    return cli("train", str(SMOKE), "--set", "train.epochs=1").strip().split()[-1]


def stored(job_id: int):
    db = Database(Settings().database_url)
    with db.read() as session:
        return queries.benchmark_generations(session, job_id), queries.benchmark_scores(session, job_id)


@pytest.mark.slow
def test_mifeval_answers_are_stored_and_scored_as_the_suite_scores_them(trained_run: str) -> None:
    fetched = cli("data", "fetch", "m-ifeval", "--languages", "en,ja")
    assert "m-ifeval:en: downloaded" in fetched and "m-ifeval:ja: downloaded" in fetched
    report = benchmark(trained_run, "--suite", "m-ifeval", "--languages", "en,ja", "--base")
    job, metrics = report["benchmark"], report["metrics"]
    assert (job["status"], job["done"], job["total"], job["judge_requests"]) == ("succeeded", 3, 3, 0)
    generations, scores = stored(job["id"])
    assert len(generations) == 6 and {g.arm for g in generations} == {"adapter", "base"}
    assert {(g.max_new_tokens, g.temperature, g.template) for g in generations} == {(4, 0.0, "none")}
    assert [g.seed for g in generations] == [  # each answer's own seed, from the job's seed 0
        item_seed(0, "m-ifeval", g.language, g.item_id, g.turn) for g in generations
    ]
    items = load_benchmark(Settings(), "m-ifeval", ["en", "ja"])
    for arm, prefix in (("adapter", ""), ("base", "base_")):
        answers = {(g.language, g.item_id): g.output for g in generations if g.arm == arm}
        expected = mifeval_metrics(score_mifeval(items, answers)[1])
        assert {
            k.replace("m-ifeval/", f"m-ifeval/{prefix}"): v for k, v in expected.items()
        }.items() <= metrics.items()
    assert metrics["benchmark/m-ifeval/truncated"] == sum(
        g.truncated for g in generations if g.arm == "adapter"
    )
    assert len([s for s in scores if s.metric == "prompt_strict"]) == 6


@pytest.mark.slow
def test_xlsum_with_a_judge_always_answering_a_gives_only_ties_and_reruns_from_the_cache(
    trained_run: str,
    chat_server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli("data", "fetch", "xlsum", "--languages", "en,zh")
    monkeypatch.setenv("CAPO_LAB_JUDGE_URL", chat_server.url)
    monkeypatch.setenv("CAPO_LAB_JUDGE_MODEL", "judge")
    chat_server.reply = lambda messages: "Comparison: the first.\nPreferred: Answer (A)"
    args = [trained_run, "--suite", "xlsum", "--languages", "en,zh", "--base", "--max-new-tokens", "4"]
    result = runner.invoke(app, ["benchmark", *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert "the judge will get up to 6 requests" in result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert (
        metrics["benchmark/xlsum/win_rate_vs_base"] == 0.0
        and metrics["benchmark/xlsum/tie_rate_vs_base"] == 1.0
    )
    assert metrics["benchmark/xlsum/inconsistency_rate"] == 1.0 and metrics["benchmark/xlsum/unjudged"] == 0
    assert "benchmark/xlsum/rouge_l/zh" in metrics and "benchmark/xlsum/base_rouge_l/zh" in metrics
    asked = len(chat_server.bodies)
    again = benchmark(trained_run, "--suite", "xlsum", "--languages", "en,zh", "--base")
    assert len(chat_server.bodies) == asked  # greedy answers again: every verdict from the stored cache
    assert again["metrics"]["benchmark/xlsum/inconsistency_rate"] == 1.0


@pytest.mark.slow
def test_mt_bench_second_turn_sees_the_first_answer_and_is_rated(
    trained_run: str,
    chat_server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli("data", "fetch", "mt-bench", "--languages", "de")
    without = benchmark(trained_run, "--suite", "mt-bench", "--languages", "de")
    assert without["benchmark"]["note"].startswith("no judge configured") and without["metrics"] == {
        "benchmark/mt-bench/truncated": pytest.approx(without["metrics"]["benchmark/mt-bench/truncated"])
    }
    monkeypatch.setenv("CAPO_LAB_JUDGE_URL", chat_server.url)
    monkeypatch.setenv("CAPO_LAB_JUDGE_MODEL", "judge")
    chat_server.reply = lambda messages: "Rating: [[7]]"
    report = benchmark(trained_run, "--suite", "mt-bench", "--languages", "de")
    assert report["metrics"]["benchmark/mt-bench/score/de"] == 7.0
    first, second = stored(report["benchmark"]["id"])[0]
    assert (first.turn, second.turn) == (1, 2) and second.prompt.startswith(first.prompt)
    assert "Jetzt auf Französisch." in second.prompt and first.output in second.prompt


def test_bad_input_is_one_line_each(lab_home: Path, served, shared_data: Path) -> None:
    from capo_lab import lifecycle
    from tests.worker.conftest import tiny_config

    db = Database(Settings().database_url)
    cli("data", "import", str(DIVEMT), "--name", "tiny", "--per-direction", "1")
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    cases = {
        ("--suite", "m-ifevil"): "error: unknown suite 'm-ifevil'; choose from m-ifeval, xlsum, mt-bench",
        ("--suite", "xlsum", "--languages", "de"): "error: xlsum has no language 'de'; choose from "
        "en, zh, vi, ar, uk, tr, fr, ja, es",
        ("--suite", "xlsum", "--limit", "0"): "error: --limit must be at least 1, not 0",
        ("--suite", "xlsum"): f"error: run {run_id} has no adapter at step last; steps with one: none yet",
    }
    for args, line in cases.items():
        result = runner.invoke(app, ["benchmark", str(run_id), *args])
        assert (result.exit_code, result.stderr.strip().splitlines()) == (1, [line]), args
    missing = runner.invoke(app, ["benchmark", "99", "--suite", "xlsum"])
    assert missing.stderr.strip().splitlines() == ["error: no run 99; see `capo-lab runs list`"]


def test_the_table_has_a_row_per_metric_and_a_column_per_language_then_all() -> None:
    from capo_lab.cli.benchmark import score_table

    metrics = {
        "benchmark/xlsum/rouge_l/zh": 0.4,
        "benchmark/xlsum/rouge_l/en": 0.25,
        "benchmark/xlsum/rouge_l": 0.3,
        "benchmark/xlsum/base_rouge_l/en": 0.2,
        "benchmark/xlsum/truncated": 2.0,
    }
    headers, rows = score_table("xlsum", metrics)
    assert headers == ["metric", "en", "zh", "all"]
    assert rows == [
        ["rouge_l", "0.250", "0.400", "0.300"],
        ["base_rouge_l", "0.200", "", ""],
        ["truncated", "", "", "2.000"],
    ]
