"""The UI's service: data-folder sandbox, launch through the queue, pair table and detail, named endpoints."""

import re
import threading
from pathlib import Path

import pytest

from app.main import build_app
from capo_lab.database import Database
from capo_lab.datasets import dataset_pairs
from capo_lab.errors import LabError
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.conftest import DIVEMT
from worker.evaluate import run_evaluation
from worker.execute import train_run
from worker.training_job import run_job

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(lab_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> LabService:
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(shared_data))
    settings = Settings()

    def run_now(run_id: int) -> None:
        run_job(
            Database(settings.database_url), settings, run_id, "test", threading.Event(), execute=train_run
        )

    def evaluate_now(evaluation_id: int) -> None:
        run_evaluation(Database(settings.database_url), settings, evaluation_id)

    return LabService(settings, enqueue=run_now, enqueue_evaluation=evaluate_now)


def test_the_four_named_endpoints_exist(service: LabService) -> None:
    names = {str(f.api_name) for f in build_app(service).fns.values()}
    assert {"import_dataset", "launch_run", "run_metrics", "pair_detail"} <= names


def test_files_outside_the_data_folders_are_refused(service: LabService, tmp_path: Path) -> None:
    assert str(DIVEMT) in service.data_files()
    outside = tmp_path / "en-de.jsonl"
    outside.write_text('{"src": "a", "mt": "b", "pe": "c"}\n')
    with pytest.raises(LabError, match="outside the data folders"):
        service.import_dataset("x", [str(outside)], [])
    with pytest.raises(LabError, match="outside the data folders"):
        service.import_dataset(
            "x", [str(Path(DIVEMT).parent / ".." / ".." / ".." / "main" / "README.md")], []
        )
    assert service.datasets() == []


@pytest.mark.slow
def test_launch_then_inspect_a_pair_down_to_its_tokens(service: LabService) -> None:
    summary = service.import_dataset("d", [str(DIVEMT)], [], per_direction=1)
    assert summary.pair_count == 18
    raw = service.preset("smoke").model_dump()
    raw["data"]["dataset"] = "d"
    raw["train"].update(epochs=2, eval_every=1)
    (run_id,) = service.launch(raw)
    assert service.runs()[0].status == "succeeded"
    steps = service.score_steps(run_id, "eval")
    assert steps == [0, 1, 2]
    rows = service.pair_table(run_id, steps[-1])
    assert len(rows) == 6
    row = rows[0]
    assert row.flipped == (row.delta < 0) and row.chosen_pushed_down == (row.dl_dlw > 0)
    detail = service.pair_detail(run_id, row.pair_id, steps[-1])
    assert [h.step for h in detail.history] == steps
    tokens = detail.tokens
    assert len(tokens.chosen_logps) == detail.score.n_tokens_chosen
    # the adapter saved at the last step reproduces the stored log-prob from per-token values
    assert sum(tokens.chosen_logps) == pytest.approx(detail.score.logp_chosen, abs=1e-3)
    assert sum(tokens.rejected_logps) == pytest.approx(detail.score.logp_rejected, abs=1e-3)
    points = service.metrics(run_id, after_step=1)
    assert points and all(p.step > 1 for p in points)
    zipped = service.export_zip(run_id).path
    assert Path(zipped).stat().st_size > 0


def test_a_source_name_imports_from_the_mirror_and_is_listed(service: LabService) -> None:
    assert service.data_files()[:1] == ["mlqe-pe:en-de:train"] and "divemt:warmup" in service.data_files()
    summary = service.import_dataset("named", ["divemt:warmup"], [], per_direction=1)
    assert summary.pair_count == 18  # 6 DivEMT directions × 3 splits, read from CAPO_LAB_DATA_DIRS
    assert any(r.name == "divemt:warmup" and r.status == "mirrored" for r in service.sources())


def test_one_pair_rendered_as_the_trainer_feeds_it(service: LabService) -> None:
    from app.tab_data import model_input_text

    service.import_dataset("r", [str(DIVEMT)], [], per_direction=1)
    pair = dataset_pairs(service.db, "r", split="eval", direction="en-it")[0]
    record = service.render_pair("r", pair.pair_id, "tiny-random-llama", "zephyr")
    assert record.prompt.text == "<s><|user|>\n" + pair.prompt + "</s>\n<|assistant|>\n"
    assert record.chosen.text == pair.chosen + "</s>" and record.rejected.text == pair.rejected + "</s>"
    shown = model_input_text(record)
    assert f"chosen — {len(record.chosen.ids)} tokens, scored" in shown and pair.rejected in shown
    with pytest.raises(LabError, match="has no pair 999999"):
        service.render_pair("r", 999999, "tiny-random-llama", "none")


@pytest.mark.slow
def test_translations_are_queued_then_read_per_pair_and_per_direction(service: LabService) -> None:
    service.import_dataset("t", [str(DIVEMT)], [], per_direction=1)
    raw = service.preset("smoke").model_dump()
    raw["data"]["dataset"] = "t"
    raw["train"].update(epochs=1, generate_max_new_tokens=4)
    (run_id,) = service.launch(raw)
    assert service.direction_chrf(run_id) == [] and service.pair_translations(run_id, 1) is None
    job = service.evaluate_translations(run_id)
    (record,) = service.evaluations(run_id)
    assert (record.id, record.status, record.done, record.total) == (job, "succeeded", 12, 12)
    bars = service.direction_chrf(run_id)
    assert [b.direction for b in bars][-1] == "all" and len(bars) == 7  # six DivEMT directions, then all
    assert all(b.base is not None and 0 < b.p_value <= 1 for b in bars)
    pair_id = service.pair_table(run_id, "last")[0].pair_id
    seen = service.pair_translations(run_id, pair_id)
    assert seen.trained is not None and seen.base is not None and seen.chrf_trained >= 0
    with pytest.raises(LabError, match="no adapter at step 99"):
        service.evaluate_translations(run_id, step="99")


@pytest.fixture
def queue_only(lab_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> LabService:
    """A service whose queue takes runs and never runs them."""
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(shared_data))
    return LabService(Settings(), enqueue=lambda run_id: None)


def test_every_config_problem_at_once_under_its_key(queue_only: LabService) -> None:
    raw = queue_only.preset("smoke").model_dump()
    raw["name"] = " "
    raw["objective"] = {"name": "capo", "beta": 0, "alpha": 2.0}
    raw["train"].update(batch_size=0, bf16="sometimes")
    found = {p.key: p.message for p in queue_only.config_problems(raw)}
    assert found["objective.beta"] == "Input should be greater than 0"  # not objective.capo.beta
    assert found["train.batch_size"] == "Input should be greater than 0"
    assert found["train.bf16"].endswith("or 'auto'")
    assert found[""] == "name must not be blank"  # a whole-config rule, found beside the fields' errors
    assert found["data.dataset"].startswith("no dataset named 'paper8-cpu'")
    queue_only.import_dataset("paper8-cpu", [str(DIVEMT)], [], per_direction=1)
    assert queue_only.config_problems(queue_only.preset("smoke").model_dump()) == []


def test_import_problems_are_all_found_before_reading(queue_only: LabService, tmp_path: Path) -> None:
    outside = tmp_path / "en-de.jsonl"
    found = queue_only.import_problems(" ", [str(outside)], [], {"source": "x"}, per_direction=0)
    assert [p.field for p in found] == ["name", "columns", "per_direction", "files"]
    assert all("--" not in p.message for p in found)
    assert [p.field for p in queue_only.import_problems("x", [], [])] == ["files"]
    with pytest.raises(LabError, match="name: a dataset needs a name; files: choose at least one file"):
        queue_only.import_dataset("", [], [])


@pytest.mark.parametrize(
    ("train", "directions", "total"),
    [
        ({}, None, 18),  # 18 train pairs, batches of 8: 3 steps an epoch, 6 epochs
        ({"grad_accum": 2}, None, 12),  # 3 batches an epoch make 2 steps
        ({}, ["en-it", "en-nl"], 6),  # 6 train pairs: 1 step an epoch
        ({"max_steps": 5}, None, 5),
    ],
)
def test_a_queued_run_knows_its_total_steps(queue_only: LabService, train, directions, total) -> None:
    queue_only.import_dataset("paper8-cpu", [str(DIVEMT)], [], per_direction=3)
    raw = queue_only.preset("smoke").model_dump()
    raw["train"].update(train)
    raw["data"]["directions"] = directions
    (run_id,) = queue_only.launch(raw)
    (run,) = queue_only.runs()
    assert (run.id, run.status, run.step, run.total_steps) == (run_id, "queued", 0, total)


def test_the_dataset_fingerprint_follows_the_pairs_not_the_database(queue_only: LabService) -> None:
    from capo_lab.datasets import dataset_fingerprint

    for name, n in (("a", 1), ("b", 1), ("c", 2)):
        queue_only.import_dataset(name, [str(DIVEMT)], [], per_direction=n)
    a, b, c = (dataset_fingerprint(queue_only.db, n) for n in "abc")
    assert a == b != c and len(a) == 64


def test_the_zip_holds_one_folder_with_a_portable_adapter_and_the_dataset_provenance(
    queue_only: LabService, tmp_path: Path
) -> None:
    import json
    import zipfile

    from capo_lab.datasets import dataset_fingerprint
    from storage import writes

    queue_only.import_dataset("paper8-cpu", [str(DIVEMT)], [], per_direction=1, keep_ties=True)
    (run_id,) = queue_only.launch(queue_only.preset("smoke").model_dump())
    checkpoint = tmp_path / "step-4"
    checkpoint.mkdir()
    local = str(queue_only.settings.home_dir / "models" / "tiny-random-llama")
    (checkpoint / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": local, "r": 16}))
    import torch
    from safetensors.torch import save_file

    save_file({"lora_A": torch.zeros(2)}, str(checkpoint / "adapter_model.safetensors"))
    torch.save({"step": 4}, checkpoint / "trainer_state.pt")
    with queue_only.db.write() as session:
        writes.add_checkpoint(session, run_id, 4, str(checkpoint))
        writes.update_run(session, run_id, status="succeeded")
    exported_zip = queue_only.export_zip(run_id)
    assert exported_zip.path.is_relative_to(queue_only.settings.home_dir / "exports")
    with zipfile.ZipFile(exported_zip.path) as zipped:
        folder = f"capo-lab-run-{run_id}/"
        assert sorted(zipped.namelist()) == [
            folder + n
            for n in (
                "",
                "README.md",  # the model card
                "adapter_config.json",
                "adapter_model.safetensors",
                "metrics.csv",
                "run_config.json",
            )
        ]
        adapter = json.loads(zipped.read(folder + "adapter_config.json"))
        exported = json.loads(zipped.read(folder + "run_config.json"))
    assert adapter == {"base_model_name_or_path": "tiny-random-llama", "r": 16}
    assert exported["config"]["model"]["name_or_path"] == "tiny-random-llama"
    dataset = exported["dataset"]
    assert dataset["sources"] == ["warmup.tsv"] and dataset["pairs"] == 18
    assert dataset["import_options"]["keep_ties"] is True and dataset["import_options"]["detokenize"] is True
    assert dataset["fingerprint"] == {"sha256": dataset_fingerprint(queue_only.db, "paper8-cpu")}


@pytest.mark.parametrize(
    ("run_id", "step", "message"),
    [
        (1, 1e300, "step must be a whole number from -1 to 2^63 - 1, got 1e+300"),
        (1, float("nan"), "step must be a whole number from -1 to 2^63 - 1, got nan"),
        (1.5, -1, "run id must be a whole number from 1 to 2^63 - 1, got 1.5"),
        ("x", -1, "run id must be a whole number, got 'x'"),
        (99999, -1, "no run 99999; see the runs list"),
    ],
)
def test_run_metrics_refuses_numbers_outside_the_database_in_one_line(queue_only, run_id, step, message):
    """Before, a step of 1e300 reached SQLite (OverflowError traceback) and an unknown run gave []."""
    with pytest.raises(LabError, match="^" + re.escape(message) + "$"):
        queue_only.metrics(run_id, step)
