"""Issue 20, bounded inputs: no input file can take the lab down.

The bombs the issue measured (a JSONL value nested 10,000 deep, a Parquet file of 5 M
dictionary-encoded rows, a tar.gz with a 1 GiB member, a 100 MB one-line JSONL) are built here in
a second and refused by a reader in a subprocess whose peak memory is measured; every limit is
also checked on each format with small ``ReadLimits``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from capo.data.divemt import read_divemt
from capo.data.generic import read_generic
from capo.data.limits import GiB, KiB, MiB, ReadLimits, json_too_deep
from capo.data.mlqe import read_mlqe
from capo.data.readers import read_triples
from capo.data.triples import DataError
from tests.conftest import make_tar

PEAK_MIB = 512  # the issue asks for under 1 GB; refusing takes about 130 MiB
SOURCE = "A source sentence long enough to pass the builder's fifty-character filter."


# ---------------------------------------------------------------- the bombs, built small and fast


def deep_jsonl(path: Path, depth: int = 10_000) -> Path:
    """One 20 KB line whose ``src`` is nested ``depth`` arrays deep (segfaulted the old reader)."""
    nested = "[" * depth + '"x"' + "]" * depth
    path.write_text(f'{{"src": {nested}, "mt": "a", "pe": "b", "direction": "en-de"}}\n')
    return path


def dictionary_parquet(path: Path, rows: int = 5_000_000) -> Path:
    """``rows`` rows of dictionary-encoded text: about 100 KB on disk (the old reader took 10 GB)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    indices = pa.array(np.zeros(rows, dtype=np.int32))

    def column(text: str) -> pa.Array:
        return pa.DictionaryArray.from_arrays(indices, pa.array([text]))

    columns = {"src": SOURCE, "mt": "Ein Satz.", "pe": "Der Satz.", "direction": "en-de"}
    pq.write_table(pa.table({k: column(v) for k, v in columns.items()}), path, compression="zstd")
    return path


def _zeros_gz(count: int) -> bytes:
    """``count`` zero bytes (a multiple of 1 MiB) as concatenated gzip members: 1 KB per MiB."""
    return gzip.compress(bytes(MiB), mtime=0) * (count // MiB)


def zero_tar_gz(
    path: Path, size: int = GiB, name: str = "en-de-x/x.src", kind: bytes = tarfile.REGTYPE
) -> Path:
    """A tar.gz whose one member (or header extension, ``kind``) declares and holds ``size`` zero
    bytes; written without ever holding them (about 1 MB on disk per GiB)."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    with path.open("wb") as out:
        out.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT), mtime=0))
        out.write(_zeros_gz(size))
        out.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE), mtime=0))
    return path


def long_line_jsonl(path: Path, size: int = 100 * MiB) -> Path:
    """One JSONL row whose ``src`` is ``size`` bytes long (the old reader stored it as one pair)."""
    with path.open("wb") as out:
        out.write(b'{"src": "')
        for _ in range(size // MiB):
            out.write(b"a" * MiB)
        out.write(b'", "mt": "b", "pe": "c", "direction": "en-de"}\n')
    return path


# --------------------------------------------------- peak memory of a process refusing a file

MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=90)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
                  "peak_mib": peak, "seconds": time.monotonic() - start}))
"""

READ = """
import sys
from pathlib import Path
from capo.data.readers import read_triples
from capo.data.triples import DataError
try:
    print(len(read_triples(Path(sys.argv[1]))))
except DataError as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
"""


def measured(command: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> dict:
    """Run ``command`` as the only child of a fresh Python, so that ``RUSAGE_CHILDREN`` is its own
    peak resident memory (MiB); with its exit code, output and seconds."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def read_in_subprocess(path: Path, tmp: Path, **env: str) -> dict:
    """``read_triples(path)`` in a subprocess with its own empty temporary folder (``TMPDIR``)."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    result = measured([sys.executable, "-c", READ, str(path)], {"TMPDIR": str(tmpdir), **env})
    result["left_in_tmp"] = sorted(p.name for p in tmpdir.iterdir())
    return result


BOMBS = {
    "deep-nesting JSONL": (lambda tmp: deep_jsonl(tmp / "deep.jsonl"), "CAPO_LAB_MAX_DEPTH"),
    "5 M-row Parquet": (lambda tmp: dictionary_parquet(tmp / "en-de.parquet"), "CAPO_LAB_MAX_ROWS"),
    "1 GiB tar member": (lambda tmp: zero_tar_gz(tmp / "en-de-x.tar.gz"), "CAPO_LAB_MAX_MEMBER_BYTES"),
    "100 MB one-line JSONL": (lambda tmp: long_line_jsonl(tmp / "line.jsonl"), "CAPO_LAB_MAX_FIELD_BYTES"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_each_measured_bomb_is_refused_quickly_in_little_memory(bomb: str, tmp_path: Path) -> None:
    build, setting = BOMBS[bomb]
    path = build(tmp_path)
    result = read_in_subprocess(path, tmp_path)
    assert result["code"] == 1, result  # not 139 (segfault), not 0 (stored)
    (line,) = result["stderr"].strip().splitlines()
    assert line.startswith(f"error: {path.name}: ") and setting in line, line
    assert result["peak_mib"] < PEAK_MIB, result
    assert result["seconds"] < 60, result
    assert result["left_in_tmp"] == []


def test_a_long_name_header_of_1_gib_is_refused_before_tarfile_reads_it(tmp_path: Path) -> None:
    path = zero_tar_gz(tmp_path / "en-de-l.tar.gz", name="././@LongLink", kind=tarfile.GNUTYPE_LONGNAME)
    result = read_in_subprocess(path, tmp_path)
    assert result["code"] == 1 and "long-name or pax header of 1 GiB" in result["stderr"], result
    assert result["peak_mib"] < PEAK_MIB, result


# ------------------------------------------------------------------------------ the settings


def test_defaults_and_environment_overrides() -> None:
    limits = ReadLimits()
    assert (limits.max_rows, limits.max_field_bytes, limits.max_member_bytes) == (
        2_000_000,
        64 * KiB,
        512 * MiB,
    )
    assert (limits.max_depth, limits.max_total_bytes, limits.max_members) == (32, 2 * GiB, 10_000)
    assert limits.max_row_bytes == MiB
    assert ReadLimits.from_env({}) == limits
    env = {
        "CAPO_LAB_MAX_ROWS": "10",
        "CAPO_LAB_MAX_FIELD_BYTES": "1_000",
        "CAPO_LAB_MAX_MEMBER_BYTES": " 2000 ",
        "CAPO_LAB_MAX_DEPTH": "3",
        "CAPO_LAB_MAX_TOTAL_BYTES": "4000",
        "CAPO_LAB_MAX_MEMBERS": "5",
    }
    assert ReadLimits.from_env(env) == ReadLimits(10, 1000, 2000, 3, 4000, 5)
    with pytest.raises(AttributeError):
        limits.max_rows = 1  # type: ignore[misc]


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_bad_setting_is_named(value: str) -> None:
    with pytest.raises(DataError) as caught:
        ReadLimits.from_env({"CAPO_LAB_MAX_DEPTH": value})
    assert str(caught.value) == f"CAPO_LAB_MAX_DEPTH: must be a whole number of at least 1, got {value!r}"


def test_the_environment_reaches_read_triples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = jsonl(tmp_path / "en-de.jsonl", [row(i) for i in range(3)])
    assert len(read_triples(path)) == 3
    monkeypatch.setenv("CAPO_LAB_MAX_ROWS", "2")
    with pytest.raises(DataError, match=r"more than 2 rows, over the limit of 2 rows; .*CAPO_LAB_MAX_ROWS"):
        read_triples(path)


# ------------------------------------------------------------------ each limit on each format


def row(i: int, **extra: object) -> dict[str, object]:
    return {"src": f"{SOURCE} {i}", "mt": f"Satz {i}", "pe": f"Der Satz {i}", "direction": "en-de", **extra}


def jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def json_array(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def csv_file(path: Path, rows: list[dict[str, object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def parquet(path: Path, rows: list[dict[str, object]], **options: object) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, **options)  # type: ignore[arg-type]
    return path


def divemt(path: Path, texts: list[str]) -> Path:
    header = "unit_id\tlang_id\ttask_type\tsrc_text\tmt_text\ttgt_text\thter\n"
    lines = [f"{i}\tita\tpe1\t{t}\tmt {i}\tpe {i}\t10\n" for i, t in enumerate(texts)]
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path


def mlqe_tar(path: Path, sources: list[str]) -> Path:
    text = "".join(f"{s}\n" for s in sources).encode()
    lines = "".join(f"line {i}\n" for i in range(len(sources))).encode()
    return make_tar(path, {"d/dev.src": text, "d/dev.mt": lines, "d/dev.pe": lines})


ROWS_OF = {
    "jsonl": lambda tmp, rows: jsonl(tmp / "en-de.jsonl", rows),
    "json array": lambda tmp, rows: json_array(tmp / "en-de.json", rows),
    "csv": lambda tmp, rows: csv_file(tmp / "en-de.csv", rows),
    "tsv": lambda tmp, rows: csv_file(tmp / "en-de.tsv", rows, "\t"),
    "parquet": lambda tmp, rows: parquet(tmp / "en-de.parquet", rows),
    "divemt": lambda tmp, rows: divemt(tmp / "warmup.tsv", [str(r["src"]) for r in rows]),
    "mlqe-pe": lambda tmp, rows: mlqe_tar(tmp / "en-de-dev.tar.gz", [str(r["src"]) for r in rows]),
}


@pytest.mark.parametrize("kind", list(ROWS_OF))
def test_rows_over_the_limit_are_refused_in_every_format(kind: str, tmp_path: Path) -> None:
    path = ROWS_OF[kind](tmp_path, [row(i) for i in range(4)])
    assert len(read_triples(path, limits=ReadLimits(max_rows=4))) == 4
    with pytest.raises(DataError) as caught:
        read_triples(path, limits=ReadLimits(max_rows=3))
    assert caught.value.source == path.name
    assert (
        "over the limit of 3 rows; to read it, set CAPO_LAB_MAX_ROWS higher (now 3)" in caught.value.problem
    )


@pytest.mark.parametrize("kind", list(ROWS_OF))
def test_a_field_over_the_limit_is_refused_in_every_format(kind: str, tmp_path: Path) -> None:
    """64 KiB per field, counted in UTF-8 bytes: 30,000 CJK characters are 90,000 bytes."""
    fits, too_long = "文" * 21_000, "文" * 30_000  # 63,000 and 90,000 bytes
    path = ROWS_OF[kind](tmp_path, [row(0), row(1, src=fits)])
    assert len(read_triples(path, limits=ReadLimits())) == 2
    path.unlink()
    path = ROWS_OF[kind](tmp_path, [row(0), row(1, src=too_long)])
    with pytest.raises(DataError) as caught:
        read_triples(path, limits=ReadLimits())
    assert caught.value.source == path.name
    assert (
        "over the limit of 64 KiB per field; to read it, set CAPO_LAB_MAX_FIELD_BYTES" in caught.value.problem
    )


def test_a_line_over_the_row_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    limits = ReadLimits(max_field_bytes=1 * KiB)  # lines up to 16 KiB
    path = jsonl(tmp_path / "en-de.jsonl", [row(0), row(1, notes="n" * 20_000)])
    with pytest.raises(DataError) as caught:
        read_triples(path, limits=limits)
    assert caught.value.problem.startswith("line 2 is longer than 16 KiB (16 fields' worth), over the limit")


def test_a_quoted_csv_row_running_over_many_lines_is_bounded(tmp_path: Path) -> None:
    limits = ReadLimits(max_field_bytes=1 * KiB)
    path = tmp_path / "en-de.csv"
    path.write_text('src,mt,pe\n"' + "many\n" * 10_000 + '",b,c\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"the row on line 2 is longer than 16 KiB"):
        read_triples(path, limits=limits)


def test_depth_is_measured_on_the_raw_text(tmp_path: Path) -> None:
    limits = ReadLimits(max_depth=3)  # the row's object is the first level
    fits = jsonl(tmp_path / "en-de.jsonl", [row(0, meta=[[1]]), row(1, note="[[[[[[{{{{ in a string")])
    assert len(read_triples(fits, limits=limits)) == 2
    deep = jsonl(tmp_path / "en-de-2.jsonl", [row(0, meta=[[[1]]])])
    with pytest.raises(DataError, match=r"line 1 nests values more than 3 levels deep.*CAPO_LAB_MAX_DEPTH"):
        read_triples(deep, limits=limits)
    assert not json_too_deep('{"a": "\\"[[[[[[[[", "b": [[]]}', 3)
    assert json_too_deep('{"a": "\\\\", "b": [[[]]]}', 3)
    assert json_too_deep('{"a": "unterminated [[[[', 0)  # invalid JSON counts deeper, never shallower
    assert not json_too_deep("[[1]], [[[[[1]]]]]", 3, first_value=True)  # only the first value
    assert not json_too_deep('"a", [[[[[1]]]]]', 3, first_value=True)


def test_a_deep_item_of_a_json_array_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "en-de.json"
    path.write_text("[" + json.dumps(row(0)) + ', {"src": ' + "[" * 5000 + "]" * 5000 + "}]")
    with pytest.raises(DataError, match=r"^en-de.json: item 2 nests values more than 32 levels deep"):
        read_triples(path)


def test_a_json_array_is_read_an_item_at_a_time(tmp_path: Path) -> None:
    """Items straddle the 1.6 KiB chunks the small limits read in; the result is the stdlib's."""
    rows = [row(i, hter=i / 7, note="ü" * (i % 40)) for i in range(300)]
    path = tmp_path / "en-de.json"
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    limits = ReadLimits(max_field_bytes=100)  # chunks and items of at most 1,600 bytes
    triples = read_triples(path, limits=limits)
    assert [(t.source, t.hter) for t in triples] == [(str(r["src"]), r["hter"]) for r in rows]
    path.write_text(json.dumps(rows)[:-30])
    with pytest.raises(DataError, match="cannot parse as json"):
        read_triples(path, limits=limits)
    path.write_text(json.dumps([row(0, note="n" * 2000)]))
    with pytest.raises(DataError, match=r"item 1 is longer than 1.6 KiB"):
        read_triples(path, limits=limits)


def test_a_file_over_the_total_is_refused_before_reading(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "en-de.jsonl", [row(i) for i in range(30)])
    with pytest.raises(DataError) as caught:
        read_triples(path, limits=ReadLimits(max_total_bytes=1000))
    assert caught.value.problem.startswith("the file: ")
    assert "per file, unpacked; to read it, set CAPO_LAB_MAX_TOTAL_BYTES" in caught.value.problem


# ------------------------------------------------------------------------------- archives


def test_a_member_is_refused_by_its_declared_size_before_it_is_read(tmp_path: Path) -> None:
    """The header says 10 MiB but the archive ends after it: refused by the size, not as truncated."""
    info = tarfile.TarInfo("d/dev.src")
    info.size = 10 * MiB
    path = tmp_path / "en-de-dev.tar.gz"
    path.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT)))
    with pytest.raises(DataError) as caught:
        list(read_mlqe(path, limits=ReadLimits(max_member_bytes=MiB)))
    assert caught.value.problem.startswith(
        "member 'd/dev.src': 10 MiB, over the limit of 1 MiB per archive member"
    )
    assert "CAPO_LAB_MAX_MEMBER_BYTES" in caught.value.problem


def test_archive_members_and_their_total_are_bounded(tmp_path: Path) -> None:
    lines = "".join(f"{SOURCE} {i}\n" for i in range(10)).encode()  # 780 bytes
    members = {"d/dev.src": lines, "d/dev.mt": lines, "d/dev.pe": lines, "d/README": b"x"}
    path = make_tar(tmp_path / "en-de-dev.tar.gz", members)
    assert len(list(read_mlqe(path, detokenize=False, limits=ReadLimits()))) == 10
    with pytest.raises(DataError, match=r"more than 3 members, over the limit of 3 archive members"):
        list(read_mlqe(path, limits=ReadLimits(max_members=3)))
    with pytest.raises(DataError, match=r"the unpacked archive: 1.5 KiB, over the limit of 1000 bytes"):
        list(read_mlqe(path, limits=ReadLimits(max_total_bytes=1000)))


def test_a_sparse_member_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("d/dev.src")
    info.type = tarfile.GNUTYPE_SPARSE
    path = tmp_path / "en-de-dev.tar.gz"
    path.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + bytes(1024)))
    with pytest.raises(DataError, match="GNU sparse file, which is not read"):
        list(read_mlqe(path))


def test_a_folder_file_is_bounded_like_a_member(tmp_path: Path) -> None:
    folder = tmp_path / "en-de-dev"
    folder.mkdir()
    for part in ("src", "mt", "pe"):
        (folder / f"dev.{part}").write_text(f"{SOURCE}\n" * 20)
    with pytest.raises(DataError, match=r"^en-de-dev: file 'dev.mt': 1.5 KiB, over the limit of 1 KiB"):
        list(read_mlqe(folder, limits=ReadLimits(max_member_bytes=KiB)))


# --------------------------------------------------------------------------------- Parquet


def test_parquet_is_refused_by_its_footer_before_any_row_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    path = parquet(tmp_path / "en-de.parquet", [row(i) for i in range(300)], row_group_size=100)

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("rows were read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_reading)
    with pytest.raises(DataError, match=r"^en-de.parquet: 300 rows, over the limit of 299 rows"):
        read_triples(path, limits=ReadLimits(max_rows=299))
    with pytest.raises(DataError, match=r"column 'src' in row group 1: .* per archive member"):
        read_triples(path, limits=ReadLimits(max_member_bytes=1000))
    with pytest.raises(DataError, match=r"the columns read, unpacked,: .* per file, unpacked"):
        read_triples(path, limits=ReadLimits(max_total_bytes=20_000))


def test_a_long_dictionary_value_is_refused_before_it_is_repeated(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    indices = pa.array(np.zeros(100_000, dtype=np.int32))
    table = pa.table(
        {
            name: pa.DictionaryArray.from_arrays(indices, pa.array([text]))
            for name, text in {"src": "s" * 70_000, "mt": "m", "pe": "p", "direction": "en-de"}.items()
        }
    )
    path = tmp_path / "en-de.parquet"
    pq.write_table(table, path)  # 7 GB if each row's text were unpacked
    with pytest.raises(DataError, match=r"column 'src' holds a value of 68.4 KiB, over the limit of 64 KiB"):
        read_triples(path)


def test_a_nested_parquet_column_is_refused(tmp_path: Path) -> None:
    path = parquet(tmp_path / "en-de.parquet", [row(0, src=["a", "b"])])
    with pytest.raises(DataError, match=r"column 'src' must be text or a number, got list<element: string>"):
        read_triples(path)


# ------------------------------------------------------------------------------ side effects


def test_no_reader_writes_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generic reader no longer hands files to ``datasets`` (and its ``capo-read-*`` cache)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    files = [ROWS_OF[kind](tmp_path, [row(i) for i in range(3)]) for kind in ROWS_OF]
    files.append(deep_jsonl(tmp_path / "deep.jsonl", depth=100))
    for path in files:
        try:
            read_triples(path)
        except DataError:
            pass
    assert list(scratch.iterdir()) == []


def test_generic_rows_are_read_with_the_files_own_names(tmp_path: Path) -> None:
    """A column mapping still works with the streamed readers; the file's columns are listed."""
    path = csv_file(tmp_path / "en-de.csv", [{"source": "s", "translation": "t", "postedit": "p"}])
    (triple,) = read_generic(path, columns={"src": "source", "mt": "translation", "pe": "postedit"})
    assert (triple.source, triple.mt, triple.post_edit) == ("s", "t", "p")
    with pytest.raises(DataError, match="the file's columns: source, translation, postedit"):
        list(read_generic(path, columns={"src": "source", "mt": "translation", "pe": "pe_text"}))


def test_divemt_rows_keep_their_numbers(tmp_path: Path) -> None:
    path = divemt(tmp_path / "warmup.tsv", [SOURCE, SOURCE + " 2"])
    assert [t.origin for t in read_divemt(path)] == ["divemt:warmup.tsv:2", "divemt:warmup.tsv:3"]
