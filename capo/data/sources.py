"""The named MTPE sources: each file's upstream URL, its path in a local mirror, and its pinned bytes.

A source file has a name (``mlqe-pe:en-de:train``, ``divemt:main``), a path under its upstream
base URL, and a mirror path (``mlqe-pe/post-editing/train/en-de-train.tar.gz``) that is the same
under a local mirror folder and under the download cache. Files whose exact bytes we hold in the
shared data folder carry their size and sha256; a download of them with other bytes is refused.
This module only describes the files; ``capo_lab.sources`` fetches and finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from capo.data.triples import DataError

# MLQE-PE (Fomicheva et al., LREC 2022): github.com/sheffieldnlp/mlqe-pe, files
# data/post-editing/{split}/{direction}-{split}.tar.gz at the commit the shared data was taken from
# (the repository's file list and the shared README); GitHub serves a file at /raw/<commit>/<path>.
MLQE_PE_COMMIT = "2a670a1140416cf80507b5a829659383c878feb8"
MLQE_PE_URL = f"https://github.com/sheffieldnlp/mlqe-pe/raw/{MLQE_PE_COMMIT}"
# DivEMT main set: the Hugging Face dataset GroNLP/divemt; its loader script divemt.py names
# _ROOT_PATH = "https://huggingface.co/datasets/GroNLP/divemt/resolve/main" and the file main.tsv.
DIVEMT_URL = "https://huggingface.co/datasets/GroNLP/divemt/resolve/main"
# DivEMT warm-up set: the Hub's warmup.tsv is a later release (3.6-4.8 MB, extra columns), not the
# bytes we pin; those are data/warmup.tsv of github.com/gsarti/divemt at the shared README's commit
# (1,053,927 bytes there and in ../shared/data/divemt/warmup.tsv).
DIVEMT_WARMUP_COMMIT = "9e5bfadc0f919b354dbbd6b13a4e4a32ea1698d1"
DIVEMT_WARMUP_URL = f"https://github.com/gsarti/divemt/raw/{DIVEMT_WARMUP_COMMIT}"

DEFAULT_BASE_URLS = {"mlqe_pe": MLQE_PE_URL, "divemt": DIVEMT_URL, "divemt_warmup": DIVEMT_WARMUP_URL}

MLQE_PE_DIRECTIONS = ("en-de", "en-zh")
MLQE_PE_SPLITS = ("train", "dev", "test")
DIVEMT_SETS = ("warmup", "main")
SOURCES = {
    "mlqe-pe": "MLQE-PE post-editing (Fomicheva et al. 2022), en-de and en-zh, CC0",
    "divemt": "DivEMT (Sarti et al. 2022), English into ar, it, nl, tr, uk, vi, GPL-3.0",
}

# (size in bytes, sha256) of the files in ../shared/data, computed from those copies.
_MLQE_PE_PINS = {
    ("en-de", "train"): (1079757, "219cdfd4e1d89d47e6136651af5136e3942ee93b4c9c44354b232baa18c75731"),
    ("en-de", "dev"): (161064, "7ca5e97c00e9733ba97aa70ca03c1ac9840ececcc4a09900262027912d432c4c"),
    ("en-de", "test"): (160204, "78d136444c9e50c189c35dc898c4b9580ccd057121bc3349cb3df5f56a943457"),
    ("en-zh", "train"): (1231349, "9aee7f258d9a7050a6f46851ff37c6cfe4efd074a57fd692af832f2d8c864d5c"),
    ("en-zh", "dev"): (175769, "85b266c54c5770487f9213293bf871f1d6cfba31df9994fede78252af267b775"),
    ("en-zh", "test"): (180667, "31dad3bdaa3fd051e310202c188386d4dae53d78244fe750f3a48f3ab513d296"),
}
_DIVEMT_WARMUP_PIN = (1053927, "4f21b73f3bba5abda1bda47077ec3f1e084fd87ff32cf83724fa71d4a523f853")


@dataclass(frozen=True)
class SourceFile:
    """One downloadable file of a named source."""

    name: str
    source: str
    description: str
    base: str  # which base URL serves it: "mlqe_pe", "divemt" or "divemt_warmup"
    remote_path: str
    mirror_path: str
    fetch_command: str
    size: int | None = None
    sha256: str | None = None

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.remote_path}"


def _mlqe_pe_file(direction: str, split: str) -> SourceFile:
    size, sha256 = _MLQE_PE_PINS[(direction, split)]
    path = f"post-editing/{split}/{direction}-{split}.tar.gz"
    return SourceFile(
        name=f"mlqe-pe:{direction}:{split}",
        source="mlqe-pe",
        description=f"MLQE-PE {direction} {split} tarball",
        base="mlqe_pe",
        remote_path=f"data/{path}",
        mirror_path=f"mlqe-pe/{path}",
        fetch_command=f"capo-lab data fetch mlqe-pe --directions {direction} --splits {split}",
        size=size,
        sha256=sha256,
    )


def _divemt_files() -> list[SourceFile]:
    warmup_size, warmup_sha = _DIVEMT_WARMUP_PIN
    warmup = SourceFile(
        name="divemt:warmup",
        source="divemt",
        description="DivEMT warm-up set, 1080 rows",
        base="divemt_warmup",
        remote_path="data/warmup.tsv",
        mirror_path="divemt/warmup.tsv",
        fetch_command="capo-lab data fetch divemt --set warmup",
        size=warmup_size,
        sha256=warmup_sha,
    )
    main = SourceFile(
        name="divemt:main",
        source="divemt",
        description="DivEMT main set (about 85 MB, not pinned)",
        base="divemt",
        remote_path="main.tsv",
        mirror_path="divemt/main.tsv",
        fetch_command="capo-lab data fetch divemt --set main",
    )
    return [warmup, main]


CATALOGUE: dict[str, SourceFile] = {
    f.name: f
    for f in [_mlqe_pe_file(d, s) for d in MLQE_PE_DIRECTIONS for s in MLQE_PE_SPLITS] + _divemt_files()
}


def is_source_name(text: str) -> bool:
    """True for text shaped like a source name (``mlqe-pe:…``, ``divemt:…``), known or not."""
    return ":" in text and text.split(":", 1)[0] in SOURCES


def source_file(name: str) -> SourceFile:
    """The catalogue entry of ``name``; ``DataError`` listing the known names otherwise."""
    if name not in CATALOGUE:
        raise DataError(name, f"unknown source name; known names: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def select_files(
    source: str,
    directions: list[str] | None = None,
    splits: list[str] | None = None,
    sets: list[str] | None = None,
) -> list[SourceFile]:
    """The files of ``source`` that a fetch asks for; options that do not apply to it are refused."""
    if source == "mlqe-pe":
        if sets:
            raise DataError(
                "mlqe-pe", "--set is for divemt; choose MLQE-PE files with --directions and --splits"
            )
        directions = _checked(directions, MLQE_PE_DIRECTIONS, "direction")
        splits = _checked(splits, MLQE_PE_SPLITS, "split")
        return [CATALOGUE[f"mlqe-pe:{d}:{s}"] for d in directions for s in splits]
    if source == "divemt":
        if directions or splits:
            raise DataError(
                "divemt", "--directions and --splits are for mlqe-pe; choose with --set warmup|main"
            )
        return [CATALOGUE[f"divemt:{s}"] for s in _checked(sets, ("warmup",), "set", DIVEMT_SETS)]
    raise DataError(source, f"unknown source; known sources: {', '.join(SOURCES)}")


def _checked(
    asked: list[str] | None, default: tuple[str, ...], what: str, known: tuple[str, ...] | None = None
) -> list[str]:
    known = known or default
    unknown = [a for a in asked or [] if a not in known]
    if unknown:
        raise DataError(f"unknown {what} {unknown[0]!r}", f"choose from {', '.join(known)}")
    return list(dict.fromkeys(asked)) if asked else list(default)
