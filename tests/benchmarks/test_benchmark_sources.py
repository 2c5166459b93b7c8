"""Benchmark data by name through a loopback server laid out like each upstream, then parsed to items."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from capo.benchmarks.items import BenchmarkError, BenchmarkItem, select
from capo_lab.benchmark_sources import BenchmarkUrls, fetch_benchmark, load_benchmark, read_items
from capo_lab.errors import LabError
from capo_lab.settings import Settings

MIFEVAL_ES = [
    {
        "key": 1,
        "prompt": "Describe el café. Tu respuesta debe contener un título, como <<poema>>.",
        "instruction_id_list": ["es:detectable_format:title"],
        "kwargs": [{}],
    },
    {
        "key": 2,
        "prompt": 'Resume el cambio climático con "contaminación" y "ecosistema".',
        "instruction_id_list": ["es:keywords:existence", "es:punctuation:no_comma"],
        "kwargs": [{"keywords": ["contaminación", "ecosistema"]}, {"num_words": None}],
    },
]
MT_BENCH_DE = [
    {
        "question_id": 81,
        "category": "writing",
        "turns": ["Verfasse einen Reiseblog.", "Beginne jeden Satz mit A."],
    },
    {
        "question_id": 111,
        "category": "math",
        "turns": ["Fläche des Dreiecks?", "Und des Kreises?"],
        "reference": ["3", "5pi"],
    },
]
XLSUM_ZH = [
    {
        "id": "chinese-news-1",
        "url": "https://www.bbc.com/zhongwen/1",
        "title": "天气",
        "summary": "今天北京下雨。",
        "text": "北京今天全天下雨，气温较低。",
    },
    {
        "id": "chinese-news-2",
        "url": "https://www.bbc.com/zhongwen/2",
        "title": "经济",
        "summary": "股市上涨。",
        "text": "今天股市大幅上涨。",
    },
]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def xlsum_archive(language: str, rows: list[dict]) -> bytes:
    """A .tar.bz2 like the Hub's, with ``{language}_test.jsonl`` (and a train split beside it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as archive:
        for split, data in (("train", jsonl(rows[:1])), ("test", jsonl(rows))):
            info = tarfile.TarInfo(f"{language}_{split}.jsonl")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write(root: Path, path: str, data: bytes) -> Path:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
    return root / path


@pytest.fixture
def upstreams(static_server, lab_home: Path, monkeypatch: pytest.MonkeyPatch):
    """The three upstreams on loopback, each under its own prefix, in its own layout."""
    url, root, requests = static_server
    write(root, "mifeval/data/es_input_data.jsonl", jsonl(MIFEVAL_ES))
    write(root, "mtbench/fastchat/llm_judge/data/de_mt_bench/question.jsonl", jsonl(MT_BENCH_DE))
    write(
        root, "hub/data/chinese_simplified_XLSum_v2.0.tar.bz2", xlsum_archive("chinese_simplified", XLSUM_ZH)
    )
    monkeypatch.setenv("CAPO_LAB_MIFEVAL_URL", f"{url}/mifeval")
    monkeypatch.setenv("CAPO_LAB_MT_BENCH_URL", f"{url}/mtbench")
    monkeypatch.setenv("CAPO_LAB_XLSUM_URL", f"{url}/hub")
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)
    return url, root, requests


def test_fetch_caches_with_checksums_then_parses_each_layout(upstreams, lab_home: Path) -> None:
    url, root, requests = upstreams
    settings = Settings()
    got = fetch_benchmark(settings, "m-ifeval", ["es"])
    assert got[0].how == "downloaded" and got[0].url == f"{url}/mifeval/data/es_input_data.jsonl"
    cached = lab_home / "sources/m-ifeval/data/es_input_data.jsonl"
    manifest = json.loads(cached.with_name(cached.name + ".manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(jsonl(MIFEVAL_ES)).hexdigest()
    asked = len(requests)
    assert fetch_benchmark(settings, "m-ifeval", ["es"])[0].how == "cached" and len(requests) == asked

    fetch_benchmark(settings, "mt-bench", ["de"])
    fetch_benchmark(settings, "xlsum", ["zh"])
    mifeval = read_items(settings, "m-ifeval", "es")
    assert mifeval[1].instructions == ("es:keywords:existence", "es:punctuation:no_comma")
    assert mifeval[1].kwargs == ({"keywords": ["contaminación", "ecosistema"]}, {})  # None dropped
    mt = read_items(settings, "mt-bench", "de")
    assert [(m.item_id, m.category, len(m.turns), m.reference) for m in mt] == [
        ("81", "writing", 2, ()),
        ("111", "math", 2, ("3", "5pi")),
    ]
    xl = read_items(settings, "xlsum", "zh")
    assert [x.reference for x in xl] == [("今天北京下雨。",), ("股市上涨。",)]  # the test split, not train
    assert (
        xl[0].turns[0]
        == "Generate a one sentence summary of the text below in Chinese.\n\n" + XLSUM_ZH[0]["text"]
    )


def test_offline_fetch_and_missing_file_are_one_line(lab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPO_LAB_MIFEVAL_URL", "http://127.0.0.1:9/nowhere")  # discard port: refused
    with pytest.raises(LabError) as offline:
        fetch_benchmark(Settings(), "m-ifeval", ["ja"])
    message = str(offline.value)
    assert (
        "\n" not in message and "cannot reach http://127.0.0.1:9/nowhere/data/ja_input_data.jsonl" in message
    )
    assert "m-ifeval/data/ja_input_data.jsonl" in message  # where to put it instead
    with pytest.raises(LabError, match=r"^m-ifeval:ja is not fetched; run `capo-lab data fetch m-ifeval"):
        read_items(Settings(), "m-ifeval", "ja")


def test_unknown_suite_and_language_are_one_line() -> None:
    with pytest.raises(BenchmarkError, match="unknown suite 'gsm8k'; choose from m-ifeval, xlsum, mt-bench"):
        fetch_benchmark(Settings(), "gsm8k", None, urls=BenchmarkUrls())
    with pytest.raises(BenchmarkError, match="xlsum has no language 'de'; choose from en, zh"):
        fetch_benchmark(Settings(), "xlsum", ["de"], urls=BenchmarkUrls())


def test_a_mirror_folder_wins_and_limit_samples_per_language(
    tmp_path: Path, lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"question_id": i, "category": "writing", "turns": [f"q{i}", f"r{i}"]} for i in range(1, 21)]
    write(tmp_path / "mirror", "mt-bench/fastchat/llm_judge/data/mt_bench/question.jsonl", jsonl(rows))
    write(tmp_path / "mirror", "mt-bench/fastchat/llm_judge/data/ja_mt_bench/question.jsonl", jsonl(rows[:3]))
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(tmp_path / "mirror"))
    assert fetch_benchmark(Settings(), "mt-bench", ["en"])[0].how == "mirror"
    first = load_benchmark(Settings(), "mt-bench", ["en", "ja"], limit=5, seed=7)
    again = load_benchmark(Settings(), "mt-bench", ["ja", "en"], limit=5, seed=7)
    assert sorted((i.language, i.item_id) for i in first) == sorted((i.language, i.item_id) for i in again)
    english = [int(i.item_id) for i in first if i.language == "en"]
    assert len(english) == 5 and english == sorted(english)  # sampled, then in id order
    assert [i.item_id for i in first if i.language == "ja"] == ["1", "2", "3"]  # fewer than the limit: all
    other = [int(i.item_id) for i in load_benchmark(Settings(), "mt-bench", ["en"], limit=5, seed=8)]
    assert other != english  # another seed, another sample (C(20,5) = 15504 samples)


def test_select_ignores_file_order_and_refuses_a_zero_limit() -> None:
    items = [BenchmarkItem("xlsum", "en", str(i), ("p",)) for i in (10, 2, 33, 4)]
    assert [i.item_id for i in select(items, None)] == ["2", "4", "10", "33"]
    assert select(items, 2, seed=1) == select(list(reversed(items)), 2, seed=1)
    with pytest.raises(BenchmarkError, match="--limit must be at least 1"):
        select(items, 0)
