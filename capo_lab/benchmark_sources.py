"""Benchmark data by name: fetch, cache and read M-IFEval, XLSum and MT-Bench files like MLQE-PE's.

The same machinery as ``capo_lab.sources`` (mirror folder first, then the sha256-checked cache under
``$CAPO_LAB_HOME/sources/<suite>/…``, then a download that is kept only once complete); only the base
URLs differ: ``CAPO_LAB_MIFEVAL_URL``, ``CAPO_LAB_XLSUM_URL`` and ``CAPO_LAB_MT_BENCH_URL`` (unset: the
upstreams in ``capo.benchmarks.catalogue``). Every failure is a ``LabError`` of one line.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from capo.benchmarks import items as parsers
from capo.benchmarks.catalogue import DEFAULT_BASE_URLS, benchmark_file, xlsum_member
from capo.benchmarks.items import BenchmarkItem, check_languages, select
from capo.data.sources import SourceFile
from capo_lab import sources
from capo_lab.errors import LabError
from capo_lab.settings import Settings
from capo_lab.sources import Fetched


class BenchmarkUrls(BaseSettings):
    """``CAPO_LAB_MIFEVAL_URL``, ``CAPO_LAB_XLSUM_URL``, ``CAPO_LAB_MT_BENCH_URL``: base URLs to fetch
    from; tests point them at a server on loopback."""

    model_config = SettingsConfigDict(env_prefix="CAPO_LAB_", extra="ignore")

    mifeval_url: str | None = None
    xlsum_url: str | None = None
    mt_bench_url: str | None = None

    def base(self, file: SourceFile) -> str:
        return getattr(self, f"{file.base}_url") or DEFAULT_BASE_URLS[file.base]


def files_for(suite: str, languages: Sequence[str] | None = None) -> list[SourceFile]:
    """The named files of ``suite`` in ``languages`` (all of the suite's when none)."""
    return [benchmark_file(suite, code) for code in check_languages(suite, languages)]


def fetch_benchmark(
    settings: Settings,
    suite: str,
    languages: Sequence[str] | None = None,
    notify: Callable[[str], None] | None = None,
    urls: BenchmarkUrls | None = None,
) -> list[Fetched]:
    """Fetch each file of the suite (mirror, else verified cache, else download); stops at the first error."""
    urls = urls or BenchmarkUrls()
    return [_fetch_one(settings, file, urls, notify) for file in files_for(suite, languages)]


def _fetch_one(
    settings: Settings, file: SourceFile, urls: BenchmarkUrls, notify: Callable[[str], None] | None
) -> Fetched:
    mirror = sources.find_mirror(settings, file)
    if mirror is not None:
        return Fetched(file.name, mirror, "mirror", mirror.stat().st_size)
    target = sources.cache_path(settings, file)
    if sources.cache_problem(file, target) is None:
        return Fetched(file.name, target, "cached", target.stat().st_size)
    url = file.url(urls.base(file))
    if notify is not None:
        notify(f"{file.name}: downloading {url}")
    size, digest = sources._download(url, file, target)
    sources._write_manifest(target, file, url, size, digest)
    return Fetched(file.name, target, "downloaded", size, url)


def locate_benchmark(settings: Settings, suite: str, language: str) -> Path:
    """The checked local file of one suite and language; one line naming the fetch command otherwise."""
    file = benchmark_file(suite, language)
    mirror = sources.find_mirror(settings, file)
    if mirror is not None:
        return mirror
    target = sources.cache_path(settings, file)
    problem = sources.cache_problem(file, target)
    if problem is None:
        return target
    if not target.exists():
        raise LabError(
            f"{file.name} is not fetched; run `{file.fetch_command}` "
            f"(or put the file at <folder>/{file.mirror_path} in a CAPO_LAB_DATA_DIRS folder)"
        )
    raise LabError(f"{file.name}: the cached {target} {problem}; run `{file.fetch_command}` again")


def _xlsum_text(data: bytes, language: str, where: str) -> str:
    member = xlsum_member(language)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as archive:
            found = next((m for m in archive.getmembers() if m.name.rsplit("/", 1)[-1] == member), None)
            if found is None or not found.isfile():
                raise LabError(f"{where} has no {member}; is it an XLSum v2.0 archive?")
            return archive.extractfile(found).read().decode("utf-8")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise LabError(f"{where} is not a readable .tar.bz2 ({type(err).__name__})") from None
    except UnicodeDecodeError:
        raise LabError(f"{where}: {member} is not UTF-8") from None


def read_items(settings: Settings, suite: str, language: str) -> list[BenchmarkItem]:
    """Every item of one fetched (or mirrored) suite and language, parsed from its upstream layout."""
    path = locate_benchmark(settings, suite, language)
    data = path.read_bytes()
    if suite == "xlsum":
        return parsers.parse_xlsum(_xlsum_text(data, language, str(path)), language, str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LabError(f"{path} is not UTF-8") from None
    parse = parsers.parse_mifeval if suite == "m-ifeval" else parsers.parse_mt_bench
    return parse(text, language, str(path))


def load_benchmark(
    settings: Settings,
    suite: str,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[BenchmarkItem]:
    """The items a benchmark job runs: each language's file read, then ``limit`` per language, seeded."""
    chosen = [
        item for code in check_languages(suite, languages) for item in read_items(settings, suite, code)
    ]
    return select(chosen, limit, seed)
