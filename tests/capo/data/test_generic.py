import json
from pathlib import Path

import datasets
import pytest

from capo.data.generic import parse_columns, read_generic
from capo.data.readers import read_triples
from capo.data.triples import DataError

ROWS = [
    {
        "src": "The committee approved the proposal after a long debate.",
        "mt": "Der Ausschuss billigte.",
        "pe": "Der Ausschuss billigte den Vorschlag.",
        "direction": "en-de",
        "hter": 0.4,
    },
    {"src": "Una frase", "mt": "A sentence", "pe": "One sentence", "src_lang": "ita", "tgt_lang": "eng"},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_with_src_mt_pe_and_mixed_direction_columns(tmp_path: Path) -> None:
    triples = list(read_generic(_jsonl(tmp_path / "data.jsonl", ROWS)))
    assert [t.direction for t in triples] == ["en-de", "it-en"]
    assert triples[0].post_edit == "Der Ausschuss billigte den Vorschlag."
    assert triples[0].mt == "Der Ausschuss billigte."
    assert triples[0].hter == 0.4 and triples[1].hter is None
    assert triples[0].prompt is None


def test_prompt_chosen_rejected_keeps_the_prompt(tmp_path: Path) -> None:
    path = tmp_path / "en-fr.csv"
    path.write_text("prompt,chosen,rejected\nTranslate: hello,bonjour,salut\n", encoding="utf-8")
    (triple,) = read_generic(path)
    assert (triple.prompt, triple.post_edit, triple.mt) == ("Translate: hello", "bonjour", "salut")
    assert triple.direction == "en-fr"  # from the file name


def test_tsv_and_parquet(tmp_path: Path) -> None:
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("src\tmt\tpe\nsource, with comma\tmt\tpe\n", encoding="utf-8")
    assert next(iter(read_generic(tsv, default_direction="en-nl"))).source == "source, with comma"
    parquet = tmp_path / "rows.parquet"
    datasets.Dataset.from_list([{k: v for k, v in ROWS[0].items()}]).to_parquet(str(parquet))
    assert next(iter(read_generic(parquet))).direction == "en-de"


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "en-de.jsonl", [{"source": "a", "target": "b"}])
    with pytest.raises(
        DataError, match=r"needs columns src, mt, pe or prompt, chosen, rejected \(or a column"
    ):
        list(read_generic(path))


def test_a_row_without_direction_is_refused(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "rows.jsonl", [{"src": "a", "mt": "b", "pe": "c"}])
    with pytest.raises(DataError, match="no direction"):
        list(read_generic(path))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "binary"),
        ('{"src": "Größe"}\n'.encode("latin-1"), "not UTF-8"),
        (b'{"src": "a", "mt": \n', "cannot parse as jsonl"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "en-de.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as caught:
        read_triples(path)
    assert str(caught.value).startswith("en-de.jsonl")


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    path.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DataError, match="unknown format"):
        read_triples(path)


def test_a_column_mapping_reads_a_csv_with_its_own_names(tmp_path: Path) -> None:
    path = tmp_path / "en-it.csv"
    path.write_text("source,translation,postedit,score\nA long sentence.,Una frase,Una frase lunga,0.5\n")
    columns = parse_columns("src=source, mt=translation,pe=postedit,hter=score")
    assert columns == {"src": "source", "mt": "translation", "pe": "postedit", "hter": "score"}
    (triple,) = read_triples(path, columns=columns)
    assert (triple.source, triple.mt, triple.post_edit) == (
        "A long sentence.",
        "Una frase",
        "Una frase lunga",
    )
    assert (triple.direction, triple.hter) == ("en-it", 0.5)


def test_a_mapping_may_rename_only_some_columns(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "rows.jsonl", [{"src": "a", "mt": "b", "target": "c", "pair": "en-de"}])
    (triple,) = read_generic(path, columns={"pe": "target", "direction": "pair"})
    assert (triple.post_edit, triple.direction) == ("c", "en-de")


def test_a_mapped_column_the_file_lacks_is_named_with_the_files_columns(tmp_path: Path) -> None:
    path = tmp_path / "en-de.csv"
    path.write_text("source,translation,postedit\na,b,c\n")
    with pytest.raises(DataError) as caught:
        read_triples(path, columns={"src": "source", "mt": "translation", "pe": "post_edit"})
    assert str(caught.value) == (
        "en-de.csv: no column 'post_edit' (for pe); the file's columns: source, translation, postedit"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("src", "'src' must look like src=column_name"),
        ("source=src", "'source' is not a column the reader uses"),
        ("src=a,src=b", "'src' is mapped twice"),
        ("pe=", "'pe=' must look like src=column_name"),
    ],
)
def test_a_bad_mapping_text_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_columns(text)
    assert str(caught.value).startswith(problem)


def test_no_mapping_text_is_no_mapping() -> None:
    assert parse_columns("") == {} == parse_columns(" , ")
