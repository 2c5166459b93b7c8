"""``capo-lab data …``: fetch named sources, import MTPE files, list datasets, show pairs and statistics."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capo.data import SPLITS, BuildOptions, BuildReport
from capo.data.generic import parse_columns
from capo.data.sources import select_files
from capo_lab import datasets, sources
from capo_lab.benchmark_sources import fetch_benchmark
from capo_lab.cli.common import fmt, lab, open_database, print_table, stderr, stdout, user_errors
from capo_lab.settings import Settings

data_app = typer.Typer(no_args_is_help=True, help="Import and inspect MTPE preference data.")


class Split(StrEnum):
    train = "train"
    eval = "eval"
    validation = "validation"


class ShowFormat(StrEnum):
    jsonl = "jsonl"
    table = "table"


class Source(StrEnum):
    mlqe_pe = "mlqe-pe"
    divemt = "divemt"
    m_ifeval = "m-ifeval"
    xlsum = "xlsum"
    mt_bench = "mt-bench"


BENCHMARKS = ("m-ifeval", "xlsum", "mt-bench")


class DivemtSet(StrEnum):
    warmup = "warmup"
    main = "main"


@data_app.command("fetch")
@user_errors
def fetch_command(
    source: Annotated[Source, typer.Argument(help="mlqe-pe, divemt, m-ifeval, xlsum or mt-bench")],
    directions: Annotated[
        str | None, typer.Option(help="MLQE-PE directions, comma-separated (default en-de,en-zh)")
    ] = None,
    splits: Annotated[
        str | None, typer.Option(help="MLQE-PE splits, comma-separated (default train,dev,test)")
    ] = None,
    divemt_set: Annotated[DivemtSet | None, typer.Option("--set", help="DivEMT set (default warmup)")] = None,
    languages: Annotated[
        str | None, typer.Option(help="Benchmark languages, comma-separated (default: all of the suite's)")
    ] = None,
) -> None:
    """Download a source's files from upstream into $CAPO_LAB_HOME/sources, checked by size and sha256.

    A copy in a CAPO_LAB_DATA_DIRS folder (e.g. mlqe-pe/post-editing/train/en-de-train.tar.gz) is used
    instead, without network. Import fetched files by name: mlqe-pe:en-de:train, divemt:warmup, divemt:main.
    Benchmark files (m-ifeval, xlsum, mt-bench: one per language) are read by ``capo-lab benchmark``.
    """
    if source.value in BENCHMARKS:
        for fetched in fetch_benchmark(Settings(), source.value, _csv(languages), notify=_say):
            _say(fetched.line())
        return
    files = select_files(
        source.value, _csv(directions), _csv(splits), [divemt_set.value] if divemt_set else None
    )
    settings = Settings()
    for file in files:
        fetched = sources.fetch_one(settings, file, notify=_say)
        _say(fetched.line())


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _say(line: str) -> None:
    stdout.print(line, markup=False, highlight=False)


@data_app.command("import")
@user_errors
def import_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="MLQE-PE tarballs/folders, DivEMT TSV, JSONL/CSV/TSV/Parquet files, or fetched sources "
            "by name (mlqe-pe:en-de:train, divemt:warmup, divemt:main)"
        ),
    ],
    name: Annotated[str, typer.Option(help="Name of the new dataset")],
    per_direction: Annotated[int, typer.Option(min=1, help="Pairs per direction per split")] = 100,
    min_source_chars: Annotated[int, typer.Option(min=0, help="Keep sources longer than this")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the split assignment")] = 0,
    keep_ties: Annotated[bool, typer.Option(help="Keep pairs whose post-edit equals the MT")] = False,
    strict: Annotated[bool, typer.Option(help="Fail when a direction has too few pairs")] = False,
    detokenize: Annotated[bool, typer.Option(help="Moses-detokenise MLQE-PE text")] = True,
    direction: Annotated[str | None, typer.Option(help="Direction for files without one, e.g. en-de")] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="A JSONL/CSV/TSV/Parquet file's own column names, e.g. src=source,mt=translation,pe=postedit"
        ),
    ] = None,
) -> None:
    """Build train / eval / validation preference pairs and store them in one transaction."""
    try:
        mapping = parse_columns(columns or "")
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--columns") from None
    db = open_database()
    _refuse_problems(datasets.import_problems(db, name, paths, mapping))
    options = BuildOptions(
        per_direction=per_direction,
        min_source_chars=min_source_chars,
        seed=seed,
        keep_ties=keep_ties,
        strict=strict,
    )
    result = datasets.import_dataset(
        db, paths, name, options, detokenize=detokenize, default_direction=direction, columns=mapping
    )
    _print_report(result.report)
    stdout.print(
        f"Imported dataset {result.name!r}: {result.pair_count} pairs, id {result.dataset_id}",
        markup=False,
        highlight=False,
    )


# Import fields (``datasets.ImportProblem.field``) as this command spells them.
IMPORT_OPTIONS = {"name": "--name", "files": "PATHS", "columns": "--columns"}


def _refuse_problems(problems: list[datasets.ImportProblem]) -> None:
    """Every problem as ``error: --name: …``, one per line, then exit 1; nothing when there is none."""
    for p in problems:
        say = f"error: {IMPORT_OPTIONS.get(p.field, '--' + p.field.replace('_', '-'))}: {p.message}"
        stderr.print(say, markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)


def _print_report(report: BuildReport) -> None:
    rows = []
    for direction, per_split in sorted(report.counts.items()):
        dropped = ", ".join(f"{n} {why}" for why, n in report.dropped.get(direction, {}).items())
        rows.append([direction, report.usable[direction], *(per_split[s] for s in SPLITS), dropped])
    print_table(["direction", "usable", *SPLITS, "dropped"], rows)
    for line in report.shortfalls:
        stdout.print(f"warning: too few pairs for {line}", markup=False, highlight=False)


@data_app.command("list")
@user_errors
def list_command() -> None:
    """All datasets with their pair counts and directions."""
    rows = [
        [d.id, d.name, d.pair_count, " ".join(d.directions), d.created_at.strftime("%Y-%m-%d %H:%M")]
        for d in lab().datasets()
    ]
    print_table(["id", "name", "pairs", "directions", "created"], rows)


@data_app.command("stats")
@user_errors
def stats_command(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    split: Annotated[Split | None, typer.Option(help="Only this split")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per direction")] = False,
    tokenizer: Annotated[
        str | None, typer.Option(help="Also report tokens per character under this model's tokenizer")
    ] = None,
) -> None:
    """Per direction: pairs, ties (post-edit = MT), mean lengths, mean HTER, BLEU and chrF of MT
    against post-edit."""
    stats = lab().stats(name, split.value if split else None, tokenizer)
    if as_json:
        for s in stats:
            stdout.print(json.dumps(s.as_dict(), ensure_ascii=False), markup=False, highlight=False)
        return
    rows = [
        [
            s.direction,
            s.pairs,
            s.ties,
            fmt(s.mean_source_chars, 1),
            fmt(s.mean_chosen_chars, 1),
            fmt(s.mean_rejected_chars, 1),
            fmt(s.mean_hter, 3),
            fmt(s.bleu),
            fmt(s.chrf),
            fmt(s.tokens_per_char, 3),
        ]
        for s in stats
    ]
    print_table(
        [
            "direction",
            "pairs",
            "ties",
            "src chars",
            "chosen chars",
            "rejected chars",
            "HTER",
            "BLEU",
            "chrF",
            "tok/char",
        ],
        rows,
    )


@data_app.command("show")
@user_errors
def show_command(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    split: Annotated[Split, typer.Option(help="Which split")] = Split.train,
    output_format: Annotated[ShowFormat, typer.Option("--format")] = ShowFormat.jsonl,
    direction: Annotated[str | None, typer.Option(help="Only this direction")] = None,
) -> None:
    """The pairs of one split, as JSONL (one object per line) or a table."""
    pairs = lab().preview(name, split.value, direction)
    if output_format is ShowFormat.jsonl:
        for p in pairs:
            typer.echo(json.dumps(p.as_dict(), ensure_ascii=False))
        return
    rows = [
        [p.pair_id, p.direction, _cut(p.source_text), _cut(p.chosen), _cut(p.rejected), fmt(p.hter, 3)]
        for p in pairs
    ]
    print_table(["pair", "direction", "source", "chosen", "rejected", "hter"], rows)


def _cut(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
