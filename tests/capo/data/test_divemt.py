from pathlib import Path

import pytest

from capo.data.divemt import read_divemt
from capo.data.readers import read_triples
from capo.data.triples import DataError
from tests.capo.data.divemt_main import SOURCE, write_main_tsv
from tests.conftest import DIVEMT


def test_reads_post_edit_rows_with_mt_only(shared_data: Path) -> None:
    triples = list(read_divemt(DIVEMT))
    # 99 pe1/pe2 rows per language in the warm-up set, all with an MT
    assert len(triples) == 6 * 99
    assert {t.direction for t in triples} == {"en-ar", "en-it", "en-nl", "en-tr", "en-uk", "en-vi"}
    assert all(t.mt and t.source for t in triples)


def test_hter_is_converted_from_percent_to_fraction(shared_data: Path) -> None:
    hters = [t.hter for t in read_divemt(DIVEMT) if t.hter is not None]
    assert max(hters) == pytest.approx(1.41667)
    assert min(hters) == 0.0


def test_csv_quoting_is_undone(shared_data: Path) -> None:
    sources = {t.source for t in read_divemt(DIVEMT)}
    assert any(s.startswith('Tommy Dreamer said "Luna') for s in sources)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "warmup.tsv"
    path.write_text("lang_id\ttask_type\tsrc_text\ttgt_text\nita\tpe1\tHello\tCiao\n")
    with pytest.raises(DataError, match="missing DivEMT column.*mt_text"):
        list(read_divemt(path))


def test_main_set_columns_are_read_by_the_same_reader(tmp_path: Path) -> None:
    path = write_main_tsv(tmp_path / "main.tsv")
    triples = read_triples(path)  # picks the DivEMT reader from the header, as for warmup.tsv
    assert [(t.direction, t.hter) for t in triples] == [("en-it", 0.25), ("en-ar", 0.5)]
    assert triples[0].source == SOURCE
    assert triples[0].mt.startswith("Il comitato") and "nuove regole" in triples[0].post_edit
    assert triples[1].origin == "divemt:main.tsv:3"
