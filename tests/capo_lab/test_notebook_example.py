"""The README's notebook example runs as written: the application API, without the UI or the CLI."""

import re
from pathlib import Path

import worker.tasks
from capo_lab.service import LabService
from capo_lab.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def notebook_block() -> str:
    blocks = re.findall(r"```python\n(# notebook example.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has no (or more than one) notebook example"
    return blocks[0]


def test_the_readme_notebook_example_runs(lab_home: Path, shared_data: Path, monkeypatch, capsys) -> None:
    queued: list[int] = []
    monkeypatch.setattr(worker.tasks, "enqueue_run", queued.append)  # the example's queue, without a worker
    code = notebook_block().replace("../shared/data", str(shared_data))
    exec(compile(code, "README.md", "exec"), {})
    lab = LabService(Settings())
    (run,) = lab.runs()
    assert queued == [run.id] and run.status == "queued"
    assert [d.name for d in lab.datasets()] == ["nb-demo"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "queued []"
    assert printed[1].startswith("[('optim.lr', ") and "('train.batch_size', " in printed[1]


def test_a_launch_validates_its_config_once(lab_home: Path, shared_data: Path, monkeypatch) -> None:
    """The Train form's path (``checked_config`` then ``launch`` with the typed config) runs pydantic
    over the form's values once; it ran twice (``config_problems``, then again in ``launch``)."""
    from capo.config import RunConfig

    lab = LabService(Settings(), enqueue=lambda _run_id: None)
    lab.import_dataset("d", [], [str(shared_data / "divemt" / "warmup.tsv")], per_direction=2, keep_ties=True)
    raw = lab.preset("smoke").model_dump(mode="json")
    raw["data"]["dataset"] = "d"
    seen: list[object] = []
    original = RunConfig.model_validate.__func__

    def counting(cls, value, *args, **kwargs):
        seen.append(value)
        return original(cls, value, *args, **kwargs)

    monkeypatch.setattr(RunConfig, "model_validate", classmethod(counting))
    (run_id,) = lab.launch(lab.checked_config(raw))
    assert [v for v in seen if v is raw] == [raw] and lab.run(run_id).status == "queued"
