"""A user's mistake is shown inline, in the UI's own words, and leaves every other output as it was;
the server log gets one line for it."""

import html
import logging
import re
from pathlib import Path

import gradio as gr
import pytest
from markdown_it import MarkdownIt

from app.common import FormProblems, inline_errors, shows_errors
from app.config_form import form_fields, values_of
from app.tab_data import importer, shower
from app.tab_export import exporter
from app.tab_train import checked_config, form_key, study_config
from capo_lab.errors import LabError
from capo_lab.service import LabService
from capo_lab.settings import Settings

SKIP = gr.skip()
IMG = '<img src=x onerror="window.__xss=1">'


def shown(status: str) -> str:
    """The text a status line shows once Markdown renders it (tags dropped, entities read)."""
    return html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt().render(status))).strip()


@pytest.fixture
def service(lab_home: Path) -> LabService:
    return LabService(Settings())


def mtpe_csv(path: Path, header: str = "source,translation,postedit") -> Path:
    rows = [
        f"Sentence number {i} about the weather in the mountains today,Satz {i} falsch,Der Satz {i}"
        for i in range(6)
    ]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def import_args(uploads, name="d", columns=("", "", ""), direction="en-de") -> list:
    """do_import's inputs: files, columns, direction, then name and options (2 pairs per split)."""
    return [uploads, [], *columns, direction, name, 2, 20, 0, False, False, True]


def test_a_failed_action_keeps_its_outputs_says_why_and_logs_one_line(caplog) -> None:
    @inline_errors(outputs=2)
    def act():
        raise LabError(f"no dataset named {IMG}")

    with caplog.at_level(logging.INFO, logger="capo_lab.ui"):
        first, second, status = act()
    assert first == SKIP and second == SKIP
    assert "<img" not in status and shown(status) == f"⚠️ no dataset named {IMG}"
    (record,) = caplog.records
    assert record.name == "capo_lab.ui" and record.exc_info is None
    assert record.getMessage() == f"user error in act: no dataset named {IMG}"


def test_several_problems_are_listed_each_under_its_label() -> None:
    @inline_errors(outputs=1)
    def act():
        raise FormProblems([("Dataset name", "a dataset needs a name"), ("", "name must not be blank")])

    skipped, status = act()
    assert skipped == SKIP
    assert "- **Dataset name**: a dataset needs a name" in status
    assert "- name must not be blank" in status


def test_a_bug_is_not_dressed_as_a_user_error(tmp_path: Path, monkeypatch) -> None:
    """A ValueError is a bug, not a user's mistake: its traceback goes to the lab's log once, and the
    page says "internal error" and where the log is."""
    monkeypatch.setenv("CAPO_LAB_HOME", str(tmp_path))

    @inline_errors(outputs=1)
    def act():
        raise ValueError("bug in a chart")

    skipped, status = act()
    log = tmp_path / "logs" / "capo-lab.log"
    assert skipped == SKIP
    assert shown(status) == (
        f"⚠️ internal error in the UI's act (ValueError: bug in a chart); the traceback is in {log}"
    )
    logged = log.read_text()
    assert logged.count("Traceback (most recent call last)") == 1
    assert 'raise ValueError("bug in a chart")' in logged


def test_shows_errors_logs_one_line_and_prints_no_traceback(caplog) -> None:
    @shows_errors
    def act():
        raise LabError("no such run")

    with caplog.at_level(logging.INFO, logger="capo_lab.ui"), pytest.raises(gr.Error) as caught:
        act()
    assert caught.value.print_exception is False
    assert [r.getMessage() for r in caplog.records] == ["user error in act: no such run"]


def test_import_without_name_or_files_names_both_fields_in_the_tabs_words(service: LabService) -> None:
    *outputs, status = importer(service)(*import_args(None, name=" "))
    assert outputs[1:3] == [SKIP, SKIP]  # the datasets table and dropdown keep what they show
    assert "**Dataset name**: a dataset needs a name" in status
    assert "**Upload MTPE files or pick files from the data folders**" in status
    assert "--" not in status and service.datasets() == []


def test_out_of_range_numbers_and_a_bad_direction_are_listed_with_the_other_fields(
    service: LabService,
) -> None:
    """The number boxes carry no Gradio minimum: the import's own check reports them inline."""
    args = import_args(None, name="", direction="english to german")
    args[7] = -3  # pairs per direction per split
    *outputs, status = importer(service)(*args)
    assert outputs[1:3] == [SKIP, SKIP]
    assert "**Pairs per direction per split**: must be at least 1" in status
    assert "**Direction of files without one**" in status and "**Dataset name**" in status
    assert service.datasets() == []


def test_a_csv_with_its_own_column_names_imports_through_a_mapping(
    service: LabService, tmp_path: Path
) -> None:
    path = mtpe_csv(tmp_path / "rows.csv")
    summary, table, names, _uploads, _picks, status = importer(service)(
        *import_args([str(path)], columns=("source", "translation", "postedit"))
    )
    assert summary["pairs"] == 6 and list(table["name"]) == ["d"] and "Imported dataset" in status
    (info,) = service.datasets()
    assert info.build_options["columns"] == {"src": "source", "mt": "translation", "pe": "postedit"}
    assert info.build_options["default_direction"] == "en-de" and info.build_options["per_direction"] == 2


def test_a_mapping_naming_a_missing_column_stores_nothing(service: LabService, tmp_path: Path) -> None:
    path = mtpe_csv(tmp_path / "rows.csv")
    *outputs, status = importer(service)(
        *import_args([str(path)], columns=("source", "translation", "pe_text"))
    )
    assert outputs[1:3] == [SKIP, SKIP]
    assert shown(status) == (
        "⚠️ rows.csv: no column 'pe_text' (for pe); the file's columns: source, translation, postedit"
    )
    assert service.datasets() == []


def test_show_hides_the_tokenisation_chart_without_a_tokenizer(service: LabService, tmp_path: Path) -> None:
    path = mtpe_csv(tmp_path / "en-de.csv", header="src,mt,pe")
    importer(service)(*import_args([str(path)], direction=""))
    preview, pair_view, stats, quality, rate, status = shower(service)("d", "train", "", "")
    assert rate.visible is False and status == ""
    assert len(preview) == 2 and list(stats["direction"]) == ["en-de"]
    *outputs, status = shower(service)(None, "train", "", "")
    assert outputs == [SKIP] * 5 and "**Dataset**: choose a dataset" in status


def test_every_invalid_field_is_named_by_its_form_label(service: LabService) -> None:
    fields = form_fields()
    values = values_of(service.preset("smoke"), fields)
    bad = {"train.batch_size": 0, "optim.lr": -1.0, "data.dataset": "missing", "lora.target_modules": "[1, 2"}
    for i, f in enumerate(fields):
        values[i] = bad.get(form_key(f), values[i])
    labels = {form_key(f): f"Label of {form_key(f)}" for f in fields}
    with pytest.raises(FormProblems) as caught:  # YAML that does not parse is reported first, on its own
        checked_config(service, fields, values, labels)
    assert [label for label, _ in caught.value.problems] == ["Label of lora.target_modules"]
    values[next(i for i, f in enumerate(fields) if form_key(f) == "lora.target_modules")] = "all-linear"
    with pytest.raises(FormProblems) as caught:
        checked_config(service, fields, values, labels)
    found = dict(caught.value.problems)
    assert set(found) == {"Label of train.batch_size", "Label of optim.lr", "Label of data.dataset"}
    assert found["Label of optim.lr"] == "Input should be greater than 0"
    assert (
        found["Label of data.dataset"] == "no dataset named 'missing' (datasets: none yet; import one first)"
    )


def test_export_without_a_run_says_so_inline(service: LabService) -> None:
    download, status = exporter(service)(None)
    assert download == SKIP and "**Run**: choose a run" in status


def test_a_study_without_a_name_is_reported_with_the_forms_problems(service: LabService) -> None:
    fields = form_fields()
    values = values_of(service.preset("smoke"), fields)
    values[next(i for i, f in enumerate(fields) if form_key(f) == "train.epochs")] = 0
    labels = {form_key(f): form_key(f) for f in fields}
    with pytest.raises(FormProblems) as caught:
        study_config(service, fields, values, labels, " ")
    assert [label for label, _ in caught.value.problems] == ["train.epochs", "data.dataset", "Study name"]


# ---- Export tab (issue 20, item 7): an unfinished run needs a step; the zip stays in the lab home ---


def checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint folder with the files ``capo.checkpoints.save_checkpoint`` writes (no checksums:
    checked by structure), holding one tensor whose value is the step."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "/cache/x", "r": 16}')
    save_file({"w": np.full(4, step, dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    torch.save({"step": step}, folder / "trainer_state.pt")
    return folder


def seeded_run(service: LabService, status: str, steps=(2, 4)) -> int:
    """A run in ``status`` at step 6 with checkpoints at ``steps`` and a loss at steps 2, 4, 6."""
    from storage import writes

    config = service.preset("smoke").model_dump(mode="json")
    with service.db.write() as session:
        run_id = writes.add_run(session, "r", config, None, status, None)
        writes.update_run(session, run_id, step=6)
        writes.add_metrics(session, run_id, [(s, "loss", 1.0 / s) for s in (2, 4, 6)])
        for step in steps:
            folder = checkpoint(service.settings.home_dir / "runs" / str(run_id) / f"step-{step}", step)
            writes.add_checkpoint(session, run_id, step, str(folder))
    return run_id


def capo_run_temp_folders() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("capo-run-*")}


def test_export_of_a_running_run_without_a_step_is_refused_inline(service: LabService) -> None:
    """Before, the tab zipped the newest checkpoint of a running run beside its newer metrics."""
    run_id = seeded_run(service, "running")
    download, status = exporter(service)(run_id, None)
    assert download == SKIP
    assert shown(status) == (
        f"⚠️ run {run_id} is running, not finished; export one of its checkpoints by step "
        "(its checkpoint steps: 2, 4)"
    )
    download, status = exporter(service)(run_id, 3)
    assert download == SKIP and shown(status) == (
        f"⚠️ run {run_id} has no checkpoint at step 3 (its checkpoint steps: 2, 4)"
    )
    exports = service.settings.home_dir / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []


def test_the_step_box_takes_a_whole_number_or_nothing(service: LabService) -> None:
    download, status = exporter(service)(None, 2.5)
    assert download == SKIP
    assert "**Run**: choose a run" in status
    assert "**Checkpoint step \\(optional\\)**: a whole number of 0 or more" in status
    _, status = exporter(service)(seeded_run(service, "failed"), -1)
    assert "**Checkpoint step \\(optional\\)**" in status and "**Run**" not in status


def test_export_at_a_step_writes_the_zip_under_the_lab_home_and_leaves_no_temp_folder(
    service: LabService,
) -> None:
    import csv
    import io
    import json
    import zipfile

    from gradio.utils import is_static_file

    from app import tab_export

    run_id = seeded_run(service, "interrupted")
    before = capo_run_temp_folders()
    with gr.Blocks():
        tab_export.build(service)  # the step box, and the exports folder served where it is
    path, status = exporter(service)(run_id, 2)
    zipped = Path(path)
    exports = service.settings.home_dir / "exports"
    assert zipped.parent.parent == exports and zipped.name == f"capo-lab-run-{run_id}-step-2.zip"
    assert list(zipped.parent.iterdir()) == [zipped]  # the unzipped copy it was built from is gone
    assert capo_run_temp_folders() == before
    assert is_static_file(str(zipped))  # Gradio serves it from there: no copy in its temp folder
    assert shown(status) == f"Built {zipped.name}: run {run_id} (interrupted) at step 2"
    folder = f"capo-lab-run-{run_id}/"
    with zipfile.ZipFile(zipped) as archive:
        exported = json.loads(archive.read(folder + "run_config.json"))
        metrics = list(csv.DictReader(io.StringIO(archive.read(folder + "metrics.csv").decode())))
        weights = archive.read(folder + "adapter_model.safetensors")
    assert exported["run"] == {
        "id": run_id,
        "name": "r",
        "status": "interrupted",
        "step": 6,
        "adapter_step": 2,
    }
    assert [int(m["step"]) for m in metrics] == [2]
    saved = service.settings.home_dir / "runs" / str(run_id) / "step-2" / "adapter_model.safetensors"
    assert weights == saved.read_bytes()


def test_a_finished_run_exports_its_last_checkpoint_and_old_exports_go(service: LabService) -> None:
    import json
    import os
    import time
    import zipfile

    exports = service.settings.home_dir / "exports"
    stale, fresh = exports / "20000101-000000-old", exports / "recent"
    stale.mkdir(parents=True)
    (stale / "capo-lab-run-9-step-1.zip").write_bytes(b"zip")
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    run_id = seeded_run(service, "succeeded")
    path, _ = exporter(service)(run_id, None)
    with zipfile.ZipFile(path) as archive:
        exported = json.loads(archive.read(f"capo-lab-run-{run_id}/run_config.json"))
    assert exported["run"]["status"] == "succeeded" and exported["run"]["adapter_step"] == 4
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in exports.iterdir()) == sorted([fresh.name, Path(path).parent.name])
