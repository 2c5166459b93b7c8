from pathlib import Path

import pytest

from capo.data.divemt import read_divemt
from capo.data.triples import DataError
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
