"""Issue 20 through ``capo-lab data import``: every bomb the issue measured ends with one
``error: FILE: problem`` line naming the limit and its setting, exit code 1, nothing stored, no
temporary folder left, and a peak under ``PEAK_MIB`` for the whole command."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from tests.capo.data.test_limits import (
    PEAK_MIB,
    SOURCE,
    deep_jsonl,
    dictionary_parquet,
    long_line_jsonl,
    measured,
    zero_tar_gz,
)

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def good_file(tmp: Path) -> Path:
    path = tmp / "en-de.jsonl"
    rows = [{"src": f"{SOURCE} {i}", "mt": f"Satz {i}", "pe": f"Der Satz {i}"} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


BOMBS = {
    "deep-nesting JSONL": (lambda tmp: deep_jsonl(tmp / "deep.jsonl"), "CAPO_LAB_MAX_DEPTH"),
    "5 M-row Parquet": (lambda tmp: dictionary_parquet(tmp / "en-de.parquet"), "CAPO_LAB_MAX_ROWS"),
    "1 GiB tar member": (lambda tmp: zero_tar_gz(tmp / "en-de-x.tar.gz"), "CAPO_LAB_MAX_MEMBER_BYTES"),
    "1 GiB long-name header": (
        lambda tmp: zero_tar_gz(tmp / "en-de-l.tar.gz", name="././@LongLink", kind=tarfile.GNUTYPE_LONGNAME),
        "long-name or pax header of 1 GiB",
    ),
    "100 MB one-line JSONL": (lambda tmp: long_line_jsonl(tmp / "line.jsonl"), "CAPO_LAB_MAX_FIELD_BYTES"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_bomb_is_refused_storing_nothing_and_leaving_no_folder(
    bomb: str, lab_home: Path, tmp_path: Path
) -> None:
    build, words = BOMBS[bomb]
    good = good_file(tmp_path)
    common = ["--per-direction", "1", "--min-source-chars", "0"]
    assert cli("data", "import", str(good), "--name", "kept", *common)[0] == 0
    before = cli("data", "list")[1]
    path = build(tmp_path)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    command = [
        sys.executable,
        "-m",
        "capo_lab",
        "data",
        "import",
        str(good),
        str(path),
        "--name",
        "bomb",
        *common,
    ]
    result = measured(command, {"TMPDIR": str(scratch)})  # CAPO_LAB_HOME is lab_home
    assert result["code"] == 1, result  # not 139 (the web server's segfault), not 0 (stored)
    (line,) = result["stderr"].strip().splitlines()
    assert line.startswith(f"error: {path.name}: ") and words in line, line
    assert "Traceback" not in result["stdout"] + result["stderr"]
    assert result["peak_mib"] < PEAK_MIB, result
    assert result["seconds"] < 60, result
    assert [p.name for p in scratch.iterdir() if p.name.startswith("capo-read-")] == []
    assert cli("data", "list")[1] == before


def test_a_setting_raises_a_limit(lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "en-de.jsonl"
    row = {"src": SOURCE, "mt": "Satz", "pe": "Der Satz " + "lang " * 20_000}  # a 100 KB post-edit
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    code, _, err = cli("data", "import", str(path), "--name", "long")
    assert code == 1
    assert err.strip() == (
        "error: en-de.jsonl: row 1, column 'pe': 97.7 KiB, over the limit of 64 KiB per field; "
        "to read it, set CAPO_LAB_MAX_FIELD_BYTES higher (now 65536)"
    )
    monkeypatch.setenv("CAPO_LAB_MAX_FIELD_BYTES", "200000")
    code, out, err = cli("data", "import", str(path), "--name", "long", "--per-direction", "1")
    assert code == 0, err
    assert "Imported dataset 'long': 1 pairs" in out


def test_a_bad_setting_is_one_error_line(
    lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPO_LAB_MAX_ROWS", "lots")
    code, _, err = cli("data", "import", str(good_file(tmp_path)), "--name", "x")
    assert code == 1
    assert err.strip() == "error: CAPO_LAB_MAX_ROWS: must be a whole number of at least 1, got 'lots'"
