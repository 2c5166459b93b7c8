import tarfile
from pathlib import Path

import pytest

from capo.data.mlqe import read_mlqe
from capo.data.triples import DataError
from tests.conftest import MLQE_EN_DE_TRAIN, MLQE_EN_ZH_TRAIN, make_tar


def test_reads_the_real_en_de_tarball_in_memory(shared_data: Path) -> None:
    triples = list(read_mlqe(MLQE_EN_DE_TRAIN))
    assert len(triples) == 7000
    assert {t.direction for t in triples} == {"en-de"}
    first = triples[0]
    assert first.source == "José Ortega y Gasset visited Husserl at Freiburg in 1934."
    assert first.post_edit == "1934 besuchte José Ortega y Gasset Husserl in Freiburg."
    assert first.hter == 0.0
    assert first.origin == "mlqe-pe:en-de-train.tar.gz:1"


def test_detokenisation_is_optional(shared_data: Path) -> None:
    raw = next(iter(read_mlqe(MLQE_EN_DE_TRAIN, detokenize=False)))
    assert raw.source == "José Ortega y Gasset visited Husserl at Freiburg in 1934 ."


def test_chinese_detokenisation_removes_spaces_between_hanzi(shared_data: Path) -> None:
    first = next(iter(read_mlqe(MLQE_EN_ZH_TRAIN)))
    assert first.direction == "en-zh"
    assert first.post_edit == "最后的征服者随后举着剑前进。"


def test_extracted_folder_reads_like_the_tarball(shared_data: Path, tmp_path: Path) -> None:
    with tarfile.open(MLQE_EN_DE_TRAIN) as archive:
        archive.extractall(tmp_path, filter="data")
    from_folder = list(read_mlqe(tmp_path / "en-de-train"))
    from_archive = list(read_mlqe(MLQE_EN_DE_TRAIN))
    texts = [(t.direction, t.source, t.mt, t.post_edit, t.hter) for t in from_folder]
    assert texts == [(t.direction, t.source, t.mt, t.post_edit, t.hter) for t in from_archive]
    assert from_folder[0].origin == "mlqe-pe:en-de-train:1"


def test_different_line_counts_are_refused(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "en-de-dev.tar.gz",
        {
            "en-de-dev/dev.src": b"a\nb\n",
            "en-de-dev/dev.mt": b"a\n",
            "en-de-dev/dev.pe": b"a\nb\n",
        },
    )
    with pytest.raises(DataError, match="different line counts"):
        list(read_mlqe(archive))


def test_a_missing_post_edit_file_is_named(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "en-de-dev.tar.gz", {"d/dev.src": b"a\n", "d/dev.mt": b"a\n"})
    with pytest.raises(DataError, match=r"missing \*\.pe"):
        list(read_mlqe(archive))


def test_members_escaping_the_archive_are_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "en-de-dev.tar.gz", {"../../evil.src": b"a\n"})
    with pytest.raises(DataError, match="outside the archive"):
        list(read_mlqe(archive))
    assert not (tmp_path.parent / "evil.src").exists()


def test_truncated_archive_is_refused(shared_data: Path, tmp_path: Path) -> None:
    broken = tmp_path / "en-de-train.tar.gz"
    broken.write_bytes(MLQE_EN_DE_TRAIN.read_bytes()[:20000])
    with pytest.raises(DataError, match="truncated or corrupt"):
        list(read_mlqe(broken))


def test_non_utf8_member_is_refused(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "en-de-dev.tar.gz",
        {
            "d/dev.src": "Größe\n".encode("latin-1"),
            "d/dev.mt": b"a\n",
            "d/dev.pe": b"a\n",
        },
    )
    with pytest.raises(DataError, match="not UTF-8"):
        list(read_mlqe(archive))
