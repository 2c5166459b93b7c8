"""The engine's acceptance run: tiny-random-llama on 42 real train pairs, through the CLI."""

import json
import math
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from typer.testing import CliRunner

from capo.models import tiny_random_llama
from capo.scoring import collate, response_logps, tokenize_pair
from capo_lab.cli import app
from tests.conftest import DIVEMT, MLQE_EN_DE_TRAIN

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "smoke.yaml"
runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout


def softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


FORMULAS = {
    "capo": lambda r: softplus(
        -(0.1 * (r["logp_chosen"] - r["logp_rejected"]) + 2.0 * r["logp_chosen"] / r["logp_rejected"])
    ),
    "dpo": lambda r: softplus(
        -0.1 * ((r["logp_chosen"] - r["ref_logp_chosen"]) - (r["logp_rejected"] - r["ref_logp_rejected"]))
    ),
    "simpo": lambda r: softplus(
        -(2.0 * (r["logp_chosen"] / r["n_tokens_chosen"] - r["logp_rejected"] / r["n_tokens_rejected"]) - 1.0)
    ),
}


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, str]:
    home = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPO_LAB_HOME", str(home))
        patch.delenv("CAPO_LAB_DB_URL", raising=False)
        cli(
            "data",
            "import",
            str(DIVEMT),
            str(MLQE_EN_DE_TRAIN),
            "--name",
            "paper8-cpu",
            "--per-direction",
            "6",
        )
        run_ids = {}
        for objective in FORMULAS:
            out = cli("train", str(SMOKE), "--set", f"objective.name={objective}")
            run_ids[objective] = out.strip().split()[-1]
        yield run_ids  # the environment stays patched while this module's tests run


def scores(run_id: str, step: str, split: str = "train") -> list[dict]:
    out = cli("pairs", "--run", run_id, "--step", step, "--split", split, "--format", "jsonl")
    return [json.loads(line) for line in out.splitlines()]


def accuracy(rows: list[dict]) -> float:
    return sum(r["logp_chosen"] > r["logp_rejected"] for r in rows) / len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("objective", list(FORMULAS))
def test_objective_trains_and_stores_exact_per_pair_scores(trained_runs, objective: str) -> None:
    run_id = trained_runs[objective]
    first, last = scores(run_id, "first"), scores(run_id, "last")
    assert len(first) == len(last) == 42
    assert {r["direction"] for r in first} == {"en-ar", "en-it", "en-nl", "en-tr", "en-uk", "en-vi", "en-de"}
    for row in first + last + scores(run_id, "last", "eval"):
        assert row["loss"] == pytest.approx(FORMULAS[objective](row), abs=1e-4)
        assert row["rrm"] == pytest.approx(row["logp_chosen"] / row["logp_rejected"], rel=1e-6)
    if objective == "dpo":
        assert all(r["loss"] == pytest.approx(math.log(2), abs=1e-6) for r in first)
    assert accuracy(last) - accuracy(first) >= 0.2, (accuracy(first), accuracy(last))


@pytest.mark.slow
def test_export_reloads_with_peft_and_reproduces_stored_logps(trained_runs, tmp_path: Path) -> None:
    run_id = trained_runs["capo"]
    cli("export", run_id, "--out", str(tmp_path / "adapter"))
    assert {
        "adapter_config.json", "adapter_model.safetensors", "run_config.json", "metrics.csv", "README.md"
    } <= {p.name for p in (tmp_path / "adapter").iterdir()}  # fmt: skip
    base = tiny_random_llama()
    model = PeftModel.from_pretrained(base.model, str(tmp_path / "adapter")).eval()
    stored = {r["pair_id"]: r for r in scores(run_id, "last", "eval")}
    pairs = [json.loads(line) for line in cli("data", "show", "paper8-cpu", "--split", "eval").splitlines()]
    tokenized = [
        tokenize_pair(
            base.tokenizer,
            p["pair_id"],
            p["direction"],
            p["prompt"],
            p["chosen"],
            p["rejected"],
            max_length=384,
        )
        for p in pairs[:8]
    ]
    with torch.no_grad():
        out = response_logps(model, collate(tokenized, base.tokenizer.pad_token_id))
    for pair, lw, ll in zip(tokenized, out.chosen.tolist(), out.rejected.tolist(), strict=True):
        assert lw == pytest.approx(stored[pair.pair_id]["logp_chosen"], abs=1e-3)
        assert ll == pytest.approx(stored[pair.pair_id]["logp_rejected"], abs=1e-3)


def test_runs_list_and_show(trained_runs) -> None:
    assert "succeeded" in cli("runs", "list")
    shown = json.loads(cli("runs", "show", trained_runs["dpo"], "--format", "json"))
    assert shown["status"] == "succeeded" and shown["step"] == 36 and shown["error"] is None
    assert shown["config"]["objective"] == {"name": "dpo", "beta": 0.1}


def test_bad_requests_are_clear_errors(trained_runs, tmp_path: Path) -> None:
    for args, words in [
        (["pairs", "--run", "999"], "no run 999"),
        (["pairs", "--run", trained_runs["capo"], "--step", "7"], "no train scores at step '7'"),
        (["train", str(SMOKE), "--set", "train.batch_size=0"], "train.batch_size"),
        (["train", str(SMOKE), "--set", "data.dataset=missing"], "no dataset named or numbered 'missing'"),
        (["export", trained_runs["capo"], "--out", str(REPO)], "not empty"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: ") and words in result.stderr, (args, result.stderr)
