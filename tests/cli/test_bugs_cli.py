"""A bug met by a CLI command is one line on the terminal, naming the log that holds its traceback
once; a user's mistake stays a plain ``error:`` line with exit code 1."""

import subprocess
import sys
from pathlib import Path

import pytest

import capo_lab.cli.ops
from capo_lab.cli import command_name, main


def run_main(monkeypatch, argv: list[str]) -> int:
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code)


def test_a_bug_is_one_line_and_its_traceback_is_logged_once(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CAPO_LAB_HOME", str(tmp_path))

    def broken(*_args, **_kwargs):
        raise KeyError("a bug inside the command")

    monkeypatch.setattr(capo_lab.cli.ops, "open_database", broken)
    code = run_main(monkeypatch, ["capo-lab", "db", "upgrade"])
    err = capsys.readouterr().err
    log = tmp_path / "logs" / "capo-lab.log"
    assert code == 2
    assert err.splitlines() == [
        f"error: internal error in capo-lab db upgrade (KeyError: 'a bug inside the command'); "
        f"the traceback is in {log}"
    ]
    assert "Traceback" not in err
    assert log.read_text().count("Traceback (most recent call last)") == 1


def test_a_user_error_is_not_reported_as_a_bug(tmp_path: Path) -> None:
    env = {"CAPO_LAB_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "capo_lab", "runs", "show", "12345"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and "internal error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "logs").exists()


def test_a_bug_when_the_home_is_read_only_still_names_a_log_it_could_write(
    tmp_path: Path, monkeypatch, capsys
):
    home = tmp_path / "home"
    home.mkdir()
    (home / "logs").write_text("a file where the log folder would be")  # the home's log cannot be written
    monkeypatch.setenv("CAPO_LAB_HOME", str(home))
    monkeypatch.setattr(capo_lab.cli.ops, "open_database", lambda **_: 1 / 0)
    assert run_main(monkeypatch, ["capo-lab", "db", "upgrade"]) == 2
    line = capsys.readouterr().err.strip()
    logged = Path(line.rsplit("the traceback is in ", 1)[1])
    assert (
        "ZeroDivisionError" in line and logged.read_text().count("ZeroDivisionError: division by zero") >= 1
    )
    assert not logged.is_relative_to(home)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["capo-lab", "data", "import", "x.jsonl", "--name", "d"], "capo-lab data import"),
        (["capo-lab", "train", "configs/demo.yaml"], "capo-lab train"),
        (["capo-lab", "--help"], "capo-lab"),
    ],
)
def test_the_command_is_named_by_its_words(argv: list[str], name: str) -> None:
    assert command_name(argv) == name
