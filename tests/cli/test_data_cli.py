"""``capo-lab data``, end to end on the real MTPE files."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from tests.conftest import DIVEMT, MLQE_EN_DE_TRAIN, MLQE_EN_ZH_TRAIN, make_tar

PAPER_DIRECTIONS = {"en-ar", "en-it", "en-nl", "en-tr", "en-uk", "en-vi", "en-de", "en-zh"}
runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def show(name: str, split: str) -> list[dict]:
    code, out, _ = cli("data", "show", name, "--split", split, "--format", "jsonl")
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.slow
def test_import_gives_eight_directions_by_six_pairs_by_three_disjoint_splits(
    shared_data: Path, lab_home: Path
) -> None:
    code, out, err = cli(
        "data",
        "import",
        str(DIVEMT),
        str(MLQE_EN_DE_TRAIN),
        str(MLQE_EN_ZH_TRAIN),
        "--name",
        "paper8",
        "--per-direction",
        "6",
    )
    assert code == 0, err
    dataset_id = out.strip().split()[-1]
    assert dataset_id.isdigit()
    splits = {s: show(dataset_id, s) for s in ("train", "eval", "validation")}
    for split, rows in splits.items():
        assert Counter(r["direction"] for r in rows) == {d: 6 for d in PAPER_DIRECTIONS}, split
        for r in rows:
            assert len(r["source"]) > 50
            assert r["chosen"] != r["rejected"]
            assert r["prompt"].startswith("Translate this text from English to ")
            assert f"English: {r['source']}\n" in r["prompt"]
            assert {
                "pair_id",
                "direction",
                "source",
                "prompt",
                "chosen",
                "rejected",
                "hter",
                "origin",
            } <= set(r)
    sources = {s: {(r["direction"], r["source"]) for r in rows} for s, rows in splits.items()}
    assert not (
        sources["train"] & sources["eval"]
        or sources["train"] & sources["validation"]
        or sources["eval"] & sources["validation"]
    )
    triples = [
        (r["direction"], r["source"], r["chosen"], r["rejected"]) for rows in splits.values() for r in rows
    ]
    assert len(triples) == len(set(triples)) == 8 * 6 * 3


def test_list_stats_and_table(shared_data: Path, lab_home: Path) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "divemt", "--per-direction", "2")[0] == 0
    code, out, _ = cli("data", "list")
    assert code == 0 and "divemt" in out and "36" in out
    code, out, _ = cli("data", "stats", "divemt", "--json")
    stats = [json.loads(line) for line in out.splitlines()]
    assert [s["direction"] for s in stats] == sorted(PAPER_DIRECTIONS - {"en-de", "en-zh"})
    assert all(s["pairs"] == 6 and 0 <= s["bleu"] <= 100 for s in stats)
    code, out, _ = cli("data", "show", "divemt", "--split", "eval", "--format", "table")
    assert code == 0 and "en-ar" in out


def test_shortfall_warns_and_strict_fails(shared_data: Path, lab_home: Path) -> None:
    code, out, _ = cli("data", "import", str(DIVEMT), "--name", "big", "--per-direction", "20")
    assert code == 0 and "warning: too few pairs for en-ar: asked 20 per split" in out
    code, _, err = cli("data", "import", str(DIVEMT), "--name", "big2", "--per-direction", "20", "--strict")
    assert code == 1 and "too few pairs (strict)" in err


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Each category of bad input and the words its error must contain."""
    (tmp / "empty.jsonl").write_bytes(b"")
    (tmp / "en-de.jsonl").write_text('{"source": "a", "translation": "b"}\n')
    (tmp / "latin1.jsonl").write_bytes('{"src": "Größe"}\n'.encode("latin-1"))
    (tmp / "garbage.parquet").write_bytes(bytes(range(256)) * 8)
    (tmp / "en-de-dev.tar.gz").write_bytes(MLQE_EN_DE_TRAIN.read_bytes()[:30000])
    mismatch = {"d/dev.src": b"a\nb\n", "d/dev.mt": b"a\n", "d/dev.pe": b"a\nb\n"}
    return {
        "empty file": (tmp / "empty.jsonl", "empty"),
        "missing columns": (tmp / "en-de.jsonl", "needs columns"),
        "non-UTF-8 text": (tmp / "latin1.jsonl", "not UTF-8"),
        "binary garbage": (tmp / "garbage.parquet", "cannot parse as parquet"),
        "truncated archive": (tmp / "en-de-dev.tar.gz", "truncated or corrupt"),
        "escaping member": (make_tar(tmp / "en-de-x.tar.gz", {"../../x.src": b"a\n"}), "outside the archive"),
        "line counts": (make_tar(tmp / "en-de-y.tar.gz", mismatch), "different line counts"),
        "no such file": (tmp / "missing.tsv", "no such file"),
    }


def test_every_bad_input_is_refused_and_stores_nothing(
    shared_data: Path, lab_home: Path, tmp_path: Path
) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "kept", "--per-direction", "2")[0] == 0
    before = cli("data", "list")[1]
    for category, (path, words) in bad_inputs(tmp_path).items():
        # a good file first: one bad file must still leave nothing behind
        code, out, err = cli("data", "import", str(DIVEMT), str(path), "--name", f"bad-{path.stem}")
        assert code == 1, category
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (category, err)
        assert path.name in lines[0] or category == "no such file", (category, err)
        assert "Traceback" not in out + err
    code, _, err = cli("data", "import", str(DIVEMT), "--name", "kept")
    assert code == 1 and "already exists" in err
    assert cli("data", "list")[1] == before


def test_unknown_dataset_is_a_clear_error(lab_home: Path) -> None:
    code, _, err = cli("data", "show", "nope")
    assert code == 1 and "no dataset named or numbered 'nope'" in err


def test_console_script_runs_in_a_subprocess(shared_data: Path, lab_home: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "capo_lab",
            "data",
            "import",
            str(DIVEMT),
            "--name",
            "sub",
            "--per-direction",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split()[-1] == "1"


def test_tokens_per_character_under_a_tokenizer(shared_data: Path, lab_home: Path) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "divemt", "--per-direction", "2")[0] == 0
    code, out, err = cli("data", "stats", "divemt", "--json", "--tokenizer", "tiny-random-llama")
    assert code == 0, err
    rate = {s["direction"]: s["tokens_per_char"] for s in map(json.loads, out.splitlines())}
    # the byte-level tokenizer spends one token per UTF-8 byte: Arabic letters take two, Italian ones one
    assert 1.0 <= rate["en-it"] < 1.1 < 1.6 < rate["en-ar"] <= 2.0


def test_stats_count_ties_kept_with_keep_ties(lab_home: Path, tmp_path: Path) -> None:
    rows = [
        {"src": f"Source sentence number {i}.", "mt": f"Satz {i} .", "pe": f"Satz {i} ."} for i in range(3)
    ]
    rows += [
        {"src": f"Other sentence number {i}.", "mt": f"Satz {i}", "pe": f"Ein Satz {i}"} for i in range(3)
    ]
    rows[0]["pe"] = " Satz 0  . "  # still a tie: only whitespace differs
    path = tmp_path / "en-de.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    common = ["--per-direction", "10", "--min-source-chars", "0"]
    assert cli("data", "import", str(path), "--name", "ties", "--keep-ties", *common)[0] == 0
    assert cli("data", "import", str(path), "--name", "noties", *common)[0] == 0
    stats = {
        n: [json.loads(line) for line in cli("data", "stats", n, "--json")[1].splitlines()]
        for n in ("ties", "noties")
    }
    assert [(s["direction"], s["pairs"], s["ties"]) for s in stats["ties"]] == [("en-de", 6, 3)]
    assert [(s["direction"], s["pairs"], s["ties"]) for s in stats["noties"]] == [("en-de", 3, 0)]
    code, out, _ = cli("data", "stats", "ties")
    assert code == 0 and "ties" in out  # the table has a ties column


def test_columns_maps_a_csvs_own_names(lab_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "en-de.csv"
    rows = [f"Sentence number {i} about the weather,Satz {i},Der Satz {i}" for i in range(3)]
    path.write_text("\n".join(["source,translation,postedit", *rows]) + "\n", encoding="utf-8")
    common = ["--per-direction", "1", "--min-source-chars", "0"]
    code, _, err = cli(
        "data", "import", str(path), "--name", "m", "--columns", "src=source,mt=translation", *common
    )
    assert code == 1 and "error: en-de.csv: needs columns src, mt, pe" in err and "found postedit" in err
    code, _, err = cli(
        "data", "import", str(path), "--name", "m", "--columns", "src=source,mt=translation,pe=pe"
    )
    assert code == 1 and "no column 'pe' (for pe); the file's columns: source, translation, postedit" in err
    code, _, err = cli("data", "import", str(path), "--name", "m", "--columns", "source")
    assert code == 2 and "--columns" in err and "must look like src=column_name" in err
    mapping = "src=source,mt=translation,pe=postedit"
    assert cli("data", "import", str(path), "--name", "m", "--columns", mapping, *common)[0] == 0
    (row,) = show("m", "train")
    number = row["source"].split()[2]
    assert (row["rejected"], row["chosen"]) == (f"Satz {number}", f"Der Satz {number}")


def test_import_problems_are_worded_as_the_commands_options(lab_home: Path, tmp_path: Path) -> None:
    code, _, err = cli("data", "import", str(tmp_path / "x.csv"), "--name", " ")
    assert code == 1 and err.strip() == "error: --name: a dataset needs a name"


@pytest.mark.parametrize(
    ("file_name", "direction"), [("nul-en-de.jsonl", "en-de"), ("eng-deu.jsonl", "en-de")]
)
def test_the_direction_in_a_file_name_follows_the_one_rule(
    lab_home: Path, tmp_path: Path, file_name: str, direction: str
) -> None:
    """``nul-en-de.jsonl`` was imported as direction ``nul-en`` ("nul" is a language code)."""
    rows = [
        {"src": f"Source sentence number {i}.", "mt": f"Satz {i}", "pe": f"Ein Satz {i}"} for i in range(4)
    ]
    path = tmp_path / file_name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert (
        cli("data", "import", str(path), "--name", "d", "--per-direction", "10", "--min-source-chars", "0")[0]
        == 0
    )
    assert {row["direction"] for split in ("train", "eval") for row in show("d", split)} == {direction}


def test_a_name_stating_two_directions_asks_for_one(lab_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "en-de-fr.jsonl"
    path.write_text(json.dumps({"src": "Source sentence.", "mt": "Satz", "pe": "Ein Satz"}) + "\n")
    code, _, err = cli("data", "import", str(path), "--name", "d", "--min-source-chars", "0")
    assert (
        code == 1 and err.startswith("error: ") and "direction" in err and len(err.strip().splitlines()) == 1
    )
