"""The one module the UI talks to: plain data in, plain data out; no Gradio here, no SQL in the UI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from capo.config import (
    ConfigProblem,
    DataConfig,
    RunConfig,
    config_problems,
    load_config,
)
from capo.data import BuildOptions
from capo.data.sources import is_source_name
from capo.data.stats import DirectionStats
from capo_lab import (
    comparisons,
    datasets,
    exports,
    lifecycle,
    live_metrics,
    pairs,
    reports,
    runs,
    sources,
    studies,
    translations,
)
from capo_lab.comparisons import DirectionAccuracy
from capo_lab.database import Database
from capo_lab.errors import LabError, Problems
from capo_lab.model_names import allowed_model, model_choices
from capo_lab.pairs import PairDetail, PairRow
from capo_lab.rendering import RenderedPairRecord, render_dataset_pairs
from capo_lab.reports import StudyReport
from capo_lab.service_benchmarks import BenchmarkMethods, whole_number
from capo_lab.settings import Settings
from capo_lab.translations import DirectionChrf, PairTranslations
from storage import queries
from storage.records import (
    DatasetInfo,
    EvaluationRecord,
    MetricRow,
    PairRecord,
    PairScoreRecord,
    RunRecord,
    StudyRecord,
)

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATA_SUFFIXES = (".tar.gz", ".tgz", ".tsv", ".jsonl", ".json", ".csv", ".parquet")


class LabService(BenchmarkMethods):
    """``enqueue``, ``enqueue_evaluation`` and ``enqueue_benchmark`` put a run, an evaluation or a
    benchmark on the job queue (the front end passes ``worker.tasks``' functions); without them the
    service only reads. The benchmark methods are ``capo_lab.service_benchmarks``'. Model and tokenizer
    names are limited to those ``capo_lab.model_names`` allows, unless ``any_model`` (the CLI: the
    machine's owner at a shell, who may name any model transformers loads)."""

    def __init__(
        self,
        settings: Settings | None = None,
        enqueue: Callable[[int], None] | None = None,
        enqueue_evaluation: Callable[[int], None] | None = None,
        enqueue_benchmark: Callable[[int], None] | None = None,
        *,
        any_model: bool = False,
    ) -> None:
        self.settings = settings or Settings()
        self.any_model = any_model
        self._db: Database | None = None
        self._enqueue = enqueue
        self._enqueue_evaluation = enqueue_evaluation
        self._enqueue_benchmark = enqueue_benchmark

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.database_url)
        return self._db

    def enqueue(self, run_id: int) -> None:
        if self._enqueue is None:
            raise LabError("this lab service has no job queue: it can only read")
        self._enqueue(run_id)

    # ---- studies ----------------------------------------------------------------------------------
    def studies(self) -> list[StudyRecord]:
        return studies.list_studies(self.db)

    def study_report(
        self, study_id: int | str, step: str = "best", split: str = "eval", endpoint: str = "accuracies"
    ) -> StudyReport:
        """The study's report (read from storage; statistics only, no model)."""
        return reports.study_report(self.db, study_id, str(step), split, endpoint)

    def deletable_study(self, study_id: int | str) -> StudyRecord:
        """The study, or ``LabError`` while one of its runs is queued or running."""
        return studies.check_deletable(self.db, study_id)

    def delete_study(self, study_id: int | str) -> runs.Deletion:
        """Delete the study with its runs, their rows and folders; refused while one is queued or running."""
        return studies.delete_study(self.db, self.settings, study_id)

    # ---- translations (the worker generates; these only queue and read) ---------------------------
    def evaluate_translations(self, run_id: int, split: str = "eval", step: str = "last") -> int:
        """Queue an evaluation job (adapter and base) on the worker; returns its id."""
        if self._enqueue_evaluation is None:
            raise LabError("this lab service has no job queue: it can only read")
        return translations.queue_evaluation(
            self.db, int(run_id), self._enqueue_evaluation, step, split, True
        )

    def cancel_evaluation(self, evaluation_id: int | str) -> str:
        """Cancel a queued evaluation, or ask a running one to stop after its current batch."""
        return translations.cancel_evaluation(self.db, evaluation_id)

    def evaluations(self, run_id: int) -> list[EvaluationRecord]:
        with self.db.read() as session:
            return queries.evaluations(session, int(run_id))

    def pair_translations(self, run_id: int, pair_id: int, split: str = "eval") -> PairTranslations | None:
        return translations.pair_translations(self.db, int(run_id), int(pair_id), split)

    def direction_chrf(self, run_id: int, split: str = "eval") -> list[DirectionChrf]:
        return translations.direction_chrf(self.db, int(run_id), split)

    # ---- data -------------------------------------------------------------------------------------
    def data_files(self) -> list[str]:
        """Source names, then importable files under the data folders (``CAPO_LAB_DATA_DIRS``)."""
        found = sources.source_names()
        for folder in self.settings.data_folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.name.endswith(DATA_SUFFIXES):
                    found.append(str(path))
        return found

    def sources(self) -> list[sources.SourceStatus]:
        """The named sources (MLQE-PE, DivEMT) with whether each is fetched or mirrored."""
        return sources.source_rows(self.settings)

    def fetch_sources(self, names: list[str]) -> list[str]:
        """Fetch (or find mirrored) the named sources; one line per file."""
        if not names:
            raise LabError("choose sources to fetch")
        return [f.line() for f in sources.fetch_names(self.settings, names)]

    def render_pair(self, dataset: str, pair_id: int, model: str, chat_template: str) -> RenderedPairRecord:
        """One pair's exact model input (texts and token ids) under ``model``'s tokenizer."""
        model = self._model(model)
        (record,) = render_dataset_pairs(
            self.db, self.settings.home_dir / "models", dataset, model, chat_template, pair_id=pair_id
        )
        return record

    def model_choices(self) -> list[str]:
        """The models and tokenizers the UI may open (``capo_lab.model_names``)."""
        return model_choices(self.settings)

    def _model(self, name: str) -> str:
        return name if self.any_model else allowed_model(self.settings, name)

    def _allowed(self, path: str) -> Path | str:
        """A source name (``mlqe-pe:en-de:train``) as is; a path only inside the data folders."""
        if is_source_name(path):
            return path
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(folder) for folder in self.settings.data_folders):
            raise LabError(f"{path} is outside the data folders (CAPO_LAB_DATA_DIRS)")
        return resolved

    def import_problems(
        self,
        name: str,
        data_files: list[str],
        uploads: list[str],
        columns: Mapping[str, str] | None = None,
        per_direction: int = 100,
        min_source_chars: int = 50,
        default_direction: str | None = None,
    ) -> list[datasets.ImportProblem]:
        """Every problem with these import inputs found before reading a file, each under a neutral
        field name (``name``, ``files``, ``columns``, ``direction``, ``per_direction``,
        ``min_source_chars``)."""
        options = {"per_direction": int(per_direction), "min_source_chars": int(min_source_chars)}
        paths = [*data_files, *uploads]
        found = datasets.import_problems(self.db, name, paths, columns, options, default_direction)
        for path in data_files:
            try:
                self._allowed(path)
            except LabError as err:
                found.append(datasets.ImportProblem("files", str(err)))
        return found

    def import_dataset(
        self,
        name: str,
        data_files: list[str],
        uploads: list[str],
        per_direction: int = 100,
        min_source_chars: int = 50,
        seed: int = 0,
        keep_ties: bool = False,
        strict: bool = False,
        detokenize: bool = True,
        default_direction: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> datasets.ImportResult:
        """Import picked files (inside the data folders or source names) and uploads; returns a summary.
        ``columns`` maps tabular files' own column names to ``src``/``mt``/``pe`` (or ``prompt``/…)."""
        paths = [self._allowed(p) for p in data_files] + [Path(u) for u in uploads]
        options = BuildOptions(
            per_direction=int(per_direction),
            min_source_chars=int(min_source_chars),
            seed=int(seed),
            keep_ties=keep_ties,
            strict=strict,
        )
        return datasets.import_dataset(
            self.db,
            paths,
            name,
            options,
            detokenize=detokenize,
            default_direction=default_direction or None,
            settings=self.settings,
            columns=columns,
        )

    def datasets(self) -> list[DatasetInfo]:
        return datasets.list_datasets(self.db)

    def preview(self, name: str, split: str | None, direction: str | None) -> list[PairRecord]:
        return datasets.dataset_pairs(self.db, name, split=split or None, direction=direction or None)

    def stats(
        self, name: str, split: str | None = None, tokenizer: str | None = None
    ) -> list[DirectionStats]:
        cache = self.settings.home_dir / "models"
        count_tokens = datasets.token_counter(self._model(tokenizer), cache) if tokenizer else None
        return datasets.dataset_stats(self.db, name, split or None, count_tokens)

    # ---- runs -------------------------------------------------------------------------------------
    def presets(self) -> dict[str, str]:
        return {p.stem: str(p) for p in sorted(REPO_CONFIGS.rglob("*.yaml"))}

    def preset(self, name: str) -> RunConfig:
        path = self.presets().get(name)
        if path is None:
            raise LabError(f"no preset named {name!r}")
        return load_config(path)

    def config_problems(self, raw: dict[str, Any]) -> list[ConfigProblem]:
        """Every invalid key of a raw run config at once (none when it is valid), and a dataset that
        does not exist; each under its config key (``train.batch_size``)."""
        found = config_problems(raw)
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        dataset = data.get("dataset", DataConfig.model_fields["dataset"].default)
        if isinstance(dataset, str) and all(p.key != "data.dataset" for p in found):
            found += [p for p in [self._dataset_problem(dataset)] if p]
        return found

    def _dataset_problem(self, dataset: str) -> ConfigProblem | None:
        known = self.datasets()
        if any(dataset in (d.name, str(d.id)) for d in known):
            return None
        listed = ", ".join(d.name for d in known) or "none yet; import one first"
        return ConfigProblem("data.dataset", f"no dataset named {dataset!r} (datasets: {listed})")

    def launch_study(
        self, config: RunConfig | dict[str, Any], name: str, objectives: list[str], seeds: str, vary: str
    ) -> tuple[int, list[int]]:
        """Queue a study: this config (validated as ``launch`` does) × objectives × seeds × factor
        lines (``key=v1,v2``), each run of the grid validated as it is planned."""
        raw = self._typed(config).model_dump(mode="json")
        return studies.launch_study(self.db, raw, self.enqueue, name, objectives, seeds, vary)

    def checked_config(self, raw: dict[str, Any]) -> RunConfig:
        """The run config of these raw values (a form's, a file's), or ``Problems`` naming every
        invalid key at once (``train.batch_size``, ``data.dataset`` when no such dataset exists)."""
        try:
            cfg = RunConfig.model_validate(raw)
        except ValidationError:  # then every problem, each under its key
            raise Problems([(p.key, p.message) for p in self.config_problems(raw)]) from None
        return self._typed(cfg)

    def launch(self, config: RunConfig | dict[str, Any], sweep: str | None = None) -> list[int]:
        """Create and queue one run; with ``sweep`` (``key=v1,v2``), a study of one run per value, each
        point validated as it is planned. Raw values are validated here (``checked_config``: every
        problem at once); a ``RunConfig`` already was, and only its dataset is looked up."""
        cfg = self._typed(config)
        if sweep and sweep.strip():
            return studies.launch(self.db, cfg.model_dump(mode="json"), self.enqueue, sweep.strip())[1]
        return lifecycle.submit(self.db, [cfg], self.enqueue)

    def _typed(self, config: RunConfig | dict[str, Any]) -> RunConfig:
        if not isinstance(config, RunConfig):
            return self.checked_config(config)
        problem = self._dataset_problem(config.data.dataset)
        if problem:
            raise Problems([(problem.key, problem.message)])
        return config

    def runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        return list(reversed(runs.list_runs(self.db)))

    def run(self, run_id: int | str) -> RunRecord:
        """One run, or ``LabError`` naming an id that is none."""
        return runs.get_run(self.db, run_id)

    def deletable_runs(self, run_ids: list[int | str]) -> list[RunRecord]:
        """The runs, or ``LabError`` (one line) for an unknown one or one still queued or running."""
        return runs.check_deletable(self.db, run_ids)

    def pair_scores(
        self, run_id: int | str, split: str = "train", step: str = "last"
    ) -> list[PairScoreRecord]:
        """Every pair's stored scores at a step (``first``, ``last`` or a number) of one split."""
        return runs.pair_scores(self.db, run_id, split, step)

    def export_run(self, run_id: int | str, out: Path, step: int | None = None) -> exports.ExportedRun:
        """The run's adapter folder, README.md (the model card), run_config.json and metrics.csv written
        to the new folder ``out``; an unfinished run only at a named checkpoint ``step``."""
        return exports.export_run(self.db, run_id, out, step, self.settings)

    def cancel(self, run_id: int) -> str:
        return lifecycle.cancel(self.db, run_id)

    def resume(self, run_id: int) -> int | None:
        return lifecycle.resume(self.db, run_id, self.enqueue)

    def delete_runs(self, run_ids: list[int]) -> runs.Deletion:
        """Delete the runs with their rows and folders (checkpoints), all or none: refused while one is
        queued or running."""
        return runs.delete_runs(self.db, self.settings, [int(r) for r in run_ids])

    def metrics(self, run_id: int | float | str, after_step: int | float | str = -1) -> list[MetricRow]:
        """Metric rows with step > ``after_step``; a run id or step that is no whole number in the
        database's range is one error line (the API passes JSON numbers, 1e300 and NaN included)."""
        run, after = whole_number("run id", run_id, 1), whole_number("step", after_step, -1)
        with self.db.read() as session:
            if queries.get_run(session, run) is None:
                raise LabError(f"no run {run}; see the runs list")
            return queries.metrics(session, run, after)

    def metrics_since(
        self, cursor: Mapping[int, live_metrics.Seen], run_ids: list[int], keys: list[str]
    ) -> live_metrics.LiveUpdate:
        """The selected runs' rows of ``keys`` logged after ``cursor``, and whether more may come."""
        return live_metrics.metrics_since(self.db, cursor, run_ids, keys)

    def score_steps(self, run_id: int, split: str = "eval") -> list[int]:
        with self.db.read() as session:
            return queries.score_steps(session, int(run_id), split)

    def deltas(self, run_id: int, split: str = "eval", step: str = "last") -> list[tuple[str, float]]:
        """(direction, Δr = lw − ll) of every pair at a stored step."""
        return [
            (s.direction, s.logp_chosen - s.logp_rejected)
            for s in runs.pair_scores(self.db, run_id, split, step)
        ]

    def pair_table(self, run_id: int, step: int | str, split: str = "eval") -> list[PairRow]:
        return pairs.pair_table(self.db, run_id, step, split)

    def pair_detail(
        self, run_id: int, pair_id: int, step: int | str, split: str = "eval", with_tokens: bool = True
    ) -> PairDetail:
        return pairs.pair_detail(self.db, run_id, pair_id, step, split, with_tokens)

    def export_zip(self, run_id: int, step: int | None = None) -> exports.ExportedRun:
        """A zip holding one folder, ``capo-lab-run-<id>/``: the run's adapter (``PeftModel`` loads the
        folder), run_config.json and metrics.csv, under ``$CAPO_LAB_HOME/exports``; an unfinished run
        only at a named checkpoint ``step``."""
        return exports.export_zip(self.db, self.settings, run_id, step)

    # ---- comparisons (read-only) ------------------------------------------------------------------
    def run_configs(self, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Each run's stored config as plain data (legend names say which settings differ)."""
        return {int(r): runs.get_run(self.db, int(r)).config for r in run_ids}

    def direction_accuracy(self, run_ids: list[int], split: str = "eval") -> list[DirectionAccuracy]:
        return comparisons.direction_accuracy(self.db, run_ids, split)

    # ---- one pair under every run of a study (paper Fig. 8; read from storage, no model) ----------
    def study_pair(
        self, study_id: int | str, pair_id: int, step: str = "last", split: str = "eval"
    ) -> studies.StudyPair:
        return studies.study_pair(self.db, study_id, pair_id, step, split)
