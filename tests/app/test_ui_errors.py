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


def test_a_bug_is_not_dressed_as_a_user_error() -> None:
    @inline_errors(outputs=1)
    def act():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        act()


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
    assert outputs == [SKIP, SKIP, SKIP]
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
    assert outputs == [SKIP, SKIP, SKIP]
    assert "**Pairs per direction per split**: must be at least 1" in status
    assert "**Direction of files without one**" in status and "**Dataset name**" in status
    assert service.datasets() == []


def test_a_csv_with_its_own_column_names_imports_through_a_mapping(
    service: LabService, tmp_path: Path
) -> None:
    path = mtpe_csv(tmp_path / "rows.csv")
    summary, table, names, status = importer(service)(
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
    assert outputs == [SKIP, SKIP, SKIP]
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
