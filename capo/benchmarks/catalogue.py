"""The benchmark suites' named source files, in ``capo.data.sources``' ``SourceFile`` form.

One file per (suite, language): ``m-ifeval:es``, ``xlsum:zh``, ``mt-bench:de``. The remote path is the
file's path in its upstream repository, and the mirror path (the same under a ``CAPO_LAB_DATA_DIRS``
folder and under the download cache) is ``<suite>/<remote path>``. None is pinned: the upstreams are
moving branches whose bytes we do not hold, so a fetch records the sha256 it received and later reads
check against that.

Upstream layouts, as checked with the search tool (Dec 2026):

- M-IFEval: ``data/{en,es,fr,ja}_input_data.jsonl`` in shisa-ai/M-IFEval (a fork of
  lightblue-tech/M-IFEval, which the search tool does not hold; that upstream keeps the same ``data/``
  folder is assumed). GitHub serves a file at ``/raw/<branch>/<path>``.
- XLSum: the Hub dataset csebuetnlp/xlsum's loader names
  ``https://huggingface.co/datasets/csebuetnlp/xlsum/resolve/main/data/{language}_XLSum_v2.0.tar.bz2``
  with ``{language}_test.jsonl`` inside (read from a copy of its ``xlsum.py``; the Hub itself was not
  reachable from here).
- MT-Bench: FastChat's ``fastchat/llm_judge/data/mt_bench/question.jsonl`` for English; the
  multilingual fork's ``fastchat/llm_judge/data/{lang}_mt_bench/question.jsonl`` (seen for de, fr, ja
  and zh in shisa-ai/ja-mt-bench-harness, a fork of lightblue-tech/multilingual-mt-bench; it and es
  are assumed to follow the same pattern).
"""

from __future__ import annotations

from capo.benchmarks.items import LANGUAGES, XLSUM_NAMES, BenchmarkError, check_languages
from capo.data.sources import SourceFile

MIFEVAL_URL = "https://github.com/lightblue-tech/M-IFEval/raw/main"
XLSUM_URL = "https://huggingface.co/datasets/csebuetnlp/xlsum/resolve/main"
MT_BENCH_URL = "https://github.com/lightblue-tech/multilingual-mt-bench/raw/main"
DEFAULT_BASE_URLS = {"mifeval": MIFEVAL_URL, "xlsum": XLSUM_URL, "mt_bench": MT_BENCH_URL}
XLSUM_VERSION = "2.0"
_BASES = {"m-ifeval": "mifeval", "xlsum": "xlsum", "mt-bench": "mt_bench"}
DESCRIPTIONS = {
    "m-ifeval": "M-IFEval (Dussolle et al. 2025) prompts with instruction ids and kwargs",
    "xlsum": "XLSum (Hasan et al. 2021) BBC articles and summaries, all splits (the test split is read)",
    "mt-bench": "multilingual MT-Bench (Zheng et al. 2023; lightblue-tech) two-turn questions",
}


def remote_path(suite: str, language: str) -> str:
    if suite == "m-ifeval":
        return f"data/{language}_input_data.jsonl"
    if suite == "xlsum":
        return f"data/{XLSUM_NAMES[language]}_XLSum_v{XLSUM_VERSION}.tar.bz2"
    folder = "mt_bench" if language == "en" else f"{language}_mt_bench"
    return f"fastchat/llm_judge/data/{folder}/question.jsonl"


def xlsum_member(language: str) -> str:
    """The test split's file inside the XLSum archive."""
    return f"{XLSUM_NAMES[language]}_test.jsonl"


def benchmark_file(suite: str, language: str) -> SourceFile:
    """The named file of one suite and language (``BenchmarkError`` for an unknown one)."""
    check_languages(suite, [language])
    path = remote_path(suite, language)
    return SourceFile(
        name=f"{suite}:{language}",
        source=suite,
        description=f"{DESCRIPTIONS[suite]}, {language}",
        base=_BASES[suite],
        remote_path=path,
        mirror_path=f"{suite}/{path}",
        fetch_command=f"capo-lab data fetch {suite} --languages {language}",
    )


BENCHMARK_CATALOGUE: dict[str, SourceFile] = {
    f"{suite}:{language}": benchmark_file(suite, language)
    for suite, languages in LANGUAGES.items()
    for language in languages
}


def benchmark_source_file(name: str) -> SourceFile:
    if name not in BENCHMARK_CATALOGUE:
        raise BenchmarkError(f"unknown benchmark source {name!r}; known: {', '.join(BENCHMARK_CATALOGUE)}")
    return BENCHMARK_CATALOGUE[name]
