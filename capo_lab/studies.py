"""Studies: a named grid of runs on one dataset that differ only in declared factors.

A factor is a config key with its values (``objective.name=capo,dpo``,
``objective.alpha=0.5,1,2``, ``train.seed=0,1,2``). The grid is their product.
An ``objective.*`` parameter applies only to the objectives that have it (varying
α with ``--objectives capo,dpo`` gives one DPO run per seed, not one per α).
Every factor and ``--set`` key must be a key of the config (an ``objective.*`` one a parameter of
some objective of the grid), and every config is validated, before anything is stored; a bad key or
value is refused naming it. The study and its runs are then stored in one transaction, so a refused
study leaves nothing behind. Run names say the settings that differ: ``study[capo, alpha=2, seed=0]``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from typing import Any

import yaml

from capo.config import CONFIG_SECTIONS, ConfigError, RunConfig, apply_overrides, config_from_dict
from capo.config import OBJECTIVE_CONFIGS as OBJECTIVES
from capo_lab import runs
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.lifecycle import enqueue_all, submit
from capo_lab.model_names import check_chat_template
from capo_lab.pairs import stored_tokens
from capo_lab.settings import Settings
from storage import deletions, queries, writes
from storage.records import RunStatus, StudyRecord

SHORT_NAMES = {"objective.name": "", "train.seed": "seed"}


@dataclass(frozen=True)
class StudyPlan:
    name: str
    factors: dict[str, list[Any]]
    configs: list[RunConfig]


def parse_factor(text: str) -> tuple[str, list[Any]]:
    """``key.sub=v1,v2`` → (key, [v1, v2]) with each value read as YAML (numbers stay numbers)."""
    key, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not items:
        raise LabError(f"varied setting {text!r} must look like key.sub=v1,v2,...")
    return key.strip(), [yaml.safe_load(v) for v in items]


def study_factors(
    objectives: Sequence[str] = (), vary: Sequence[str] = (), seeds: Sequence[int] = ()
) -> dict[str, list[Any]]:
    factors: dict[str, list[Any]] = {}
    if objectives:
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown:
            raise LabError(
                f"objective.name: unknown {', '.join(unknown)}; choose from {', '.join(OBJECTIVES)}"
            )
        factors["objective.name"] = list(objectives)
    for text in vary:
        key, values = parse_factor(text)
        factors[key] = values
    if seeds:
        factors["train.seed"] = list(seeds)
    return factors


def section_keys() -> dict[str, list[str]]:
    """The keys of each config section (``objective``: those of every objective), and the top-level
    keys under ``""``."""
    keys = {s: sorted(type(getattr(RunConfig(), s)).model_fields) for s in CONFIG_SECTIONS}
    keys["objective"] = sorted({k for c in OBJECTIVES.values() for k in c.model_fields})
    return {"": sorted(RunConfig.model_fields), **keys}


def grid_objectives(
    raw: dict[str, Any], factors: dict[str, list[Any]], overrides: Sequence[str] = ()
) -> list[str]:
    """The objectives of the grid's runs: the ``objective.name`` factor's, else the last override's,
    else the config's (else the default's)."""
    if "objective.name" in factors:
        return [str(v) for v in factors["objective.name"]]
    named = [v.strip() for k, _, v in (o.partition("=") for o in overrides) if k.strip() == "objective.name"]
    section = raw.get("objective") if isinstance(raw.get("objective"), dict) else {}
    return [named[-1] if named else str(section.get("name", RunConfig().objective.name))]


def key_problem(key: str, objectives: Sequence[str]) -> str | None:
    """Why ``key`` (``train.seed``, ``objective.alpha``, ``name``) is not a key a run of the grid has,
    in one line naming it and the keys there are; None when it is one."""
    head, dot, rest = key.partition(".")
    keys = section_keys()
    if head not in keys[""]:
        owners = [f"{s}.{head}" for s, names in keys.items() if s and head in names and not dot]
        hint = f" (did you mean {' or '.join(owners)}?)" if owners else ""
        return f"{key}: unknown key; top-level keys: {', '.join(keys[''])}{hint}"
    if head not in keys:
        return f"{key}: unknown key; {head} is a value, not a section" if dot else None
    sub = rest.split(".")[0]
    if dot and sub not in keys[head]:
        return f"{head}.{sub}: unknown key; {head} keys: {', '.join(keys[head])}"
    if head == "objective" and dot and sub != "name":
        used = [o for o in dict.fromkeys(objectives) if o in OBJECTIVES]
        owners = [o for o in OBJECTIVES if sub in OBJECTIVES[o].model_fields]
        if used and not any(o in owners for o in used):
            return (
                f"{head}.{sub}: applies to no run of the grid; {sub} is a parameter of {', '.join(owners)}, "
                f"not of {', '.join(used)}"
            )
    return None


def check_keys(raw: dict[str, Any], factors: dict[str, list[Any]], overrides: Sequence[str] = ()) -> None:
    """Refuse (``LabError``, one line) the first factor or override whose key no run of the grid has."""
    objectives = grid_objectives(raw, factors, overrides)
    keys = [*factors, *(o.partition("=")[0].strip() for o in overrides if "=" in o)]
    for key in keys:
        problem = key_problem(key, objectives)
        if problem:
            raise LabError(problem)


def _applies(key: str, settings: dict[str, Any], raw: dict[str, Any]) -> bool:
    """An ``objective.<param>`` factor applies only where that objective has the parameter."""
    if not key.startswith("objective.") or key == "objective.name":
        return True
    objective = settings.get("objective.name", raw.get("objective", {}).get("name", "capo"))
    return objective not in OBJECTIVES or key.split(".", 1)[1] in OBJECTIVES[objective].model_fields


def _yaml_value(value: Any) -> str:
    """A value as an override's right-hand side (``2.0``, ``capo``, ``[eval, validation]``)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("...").strip()  # a bare scalar is dumped as "2.0\n..."


def _run_name(study: str, settings: dict[str, Any]) -> str:
    parts = [f"{SHORT_NAMES.get(k, k.rsplit('.', 1)[-1])}={v}".lstrip("=") for k, v in settings.items()]
    return f"{study}[{', '.join(parts)}]" if parts else study


def plan_study(
    name: str, raw: dict[str, Any], factors: dict[str, list[Any]], overrides: Sequence[str] = ()
) -> StudyPlan:
    """Every run of the grid, validated; raises ``LabError`` naming the first bad key or value."""
    if not name.strip():
        raise LabError("a study needs a name")
    check_keys(raw, factors, overrides)
    configs, seen = [], set()
    for combo in itertools.product(*factors.values()):
        settings = {k: v for k, v in zip(factors, combo, strict=True)}
        settings = {k: v for k, v in settings.items() if _applies(k, settings, raw)}
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        if key in seen:
            continue
        seen.add(key)
        extra = [f"{k}={_yaml_value(v)}" for k, v in settings.items()]
        try:  # the run's own name is validated too (length, control characters)
            cfg = config_from_dict(apply_overrides(raw, [*overrides, *extra]))
            cfg = config_from_dict({**cfg.model_dump(mode="json"), "name": _run_name(name.strip(), settings)})
        except ConfigError as err:
            raise LabError(str(err)) from None
        configs.append(cfg)
    return StudyPlan(name.strip(), factors, configs)


def launch(
    db: Database,
    raw: dict[str, Any],
    enqueue: Callable[[int], None],
    vary: str | None = None,
    overrides: Sequence[str] = (),
) -> tuple[int | None, list[int]]:
    """One run, or with ``vary`` (``key=v1,v2``) a study of one run per value named after the config."""
    if not vary:
        check_keys(raw, {}, overrides)
        try:
            cfg = config_from_dict(apply_overrides(raw, list(overrides)))
        except ConfigError as err:
            raise LabError(str(err)) from None
        return None, submit(db, [cfg], enqueue)
    name = f"{raw.get('name') or 'run'}-{uuid.uuid4().hex[:6]}"
    return submit_study(db, plan_study(name, raw, study_factors(vary=[vary]), overrides), enqueue)


def parse_seeds(text: str | None) -> list[int]:
    """``0,1,2`` → [0, 1, 2]; one error line for anything else."""
    try:
        return [int(v) for v in (text or "").split(",") if v.strip()]
    except ValueError:
        raise LabError(f"seeds are whole numbers joined by commas, got {text!r}") from None


def launch_study(
    db: Database,
    raw: dict[str, Any],
    enqueue: Callable[[int], None],
    name: str,
    objectives: Sequence[str] = (),
    seeds: str | None = None,
    vary: str | Sequence[str] = (),
) -> tuple[int, list[int]]:
    """Plan, validate and queue a study from text inputs (``vary``: one ``key=v1,v2`` per line)."""
    lines = vary.splitlines() if isinstance(vary, str) else list(vary)
    factors = study_factors(objectives, [line for line in lines if line.strip()], parse_seeds(seeds))
    return submit_study(db, plan_study(name, raw, factors), enqueue)


def submit_study(db: Database, plan: StudyPlan, enqueue: Callable[[int], None]) -> tuple[int, list[int]]:
    """Check every run (its chat template, its dataset), then create the study and its queued runs in
    one transaction (a taken name rolls it back), then enqueue them; returns (study id, run ids).
    A refused study leaves nothing behind, so the same command can be run again once fixed."""
    for cfg in {(c.model.name_or_path, c.data.chat_template): c for c in plan.configs}.values():
        check_chat_template(cfg)
    checked = [runs.new_run(db, cfg) for cfg in plan.configs]
    with db.write() as session:
        study_id = writes.add_study(session, plan.name, plan.factors)
        run_ids = [runs.add_run(session, run, study_id) for run in checked]
    enqueue_all(db, run_ids, enqueue)
    return study_id, run_ids


def get_study(db: Database, name_or_id: str | int) -> StudyRecord:
    with db.read() as session:
        found = queries.find_study(session, name_or_id)
    if found is None:
        raise LabError(f"no study named or numbered {name_or_id!r}; see `capo-lab studies`")
    return found


def list_studies(db: Database) -> list[StudyRecord]:
    with db.read() as session:
        return queries.studies(session)


def check_deletable(db: Database, name_or_id: str | int) -> StudyRecord:
    """The study, or ``LabError`` (one line) while one of its runs is queued or running."""
    study = get_study(db, name_or_id)
    runs.check_deletable(db, study.run_ids, prefix=f"study {study.name!r}: ")
    return study


def delete_study(db: Database, settings: Settings, name_or_id: str | int) -> runs.Deletion:
    """Delete the study with its runs (``runs.delete_runs``: every row of theirs, then their folders),
    in one transaction; refused, with nothing deleted, while one of its runs is queued or running."""
    study = check_deletable(db, name_or_id)
    with db.write() as session:
        run_ids = deletions.study_run_ids(session, study.id)
        runs.lock_for_deletion(session, run_ids, prefix=f"study {study.name!r}: ")
        paths = deletions.delete_study(session, study.id)
    return runs.Deletion(tuple(run_ids), *runs.remove_folders(settings, run_ids, paths), study=study.name)


# One pair under every run of a study (paper Fig. 8), read from storage only.
@dataclass(frozen=True)
class StudyPairRun:
    """One run's scores of the pair at ``step``; the token tuples are empty when none were stored."""

    run_id: int
    name: str
    objective: str
    seed: int
    step: int
    lw: float
    ll: float
    delta: float
    loss: float
    base_delta: float | None  # ref_logp_chosen − ref_logp_rejected: the base model's Δ
    chosen_tokens: tuple[str, ...]
    chosen_logps: tuple[float, ...]
    rejected_tokens: tuple[str, ...]
    rejected_logps: tuple[float, ...]


@dataclass(frozen=True)
class MissingRun:
    run_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class StudyPair:
    """The pair's texts and, for each run of the study, its scores or why it has none."""

    study_id: int
    study: str
    pair_id: int
    split: str
    direction: str
    source: str
    post_edit: str
    mt: str
    runs: tuple[StudyPairRun, ...]
    missing: tuple[MissingRun, ...]


def study_pair(
    db: Database, study_id: int | str, pair_id: int, step: str = "last", split: str = "eval"
) -> StudyPair:
    """The pair under every run of the study at ``step`` (``last``, ``first`` or a number) of ``split``:
    a record per finished run that scored it; the others are listed as missing, with the reason."""
    study = get_study(db, study_id)
    with db.read() as session:
        (pair,) = queries.get_pairs(session, [int(pair_id)]) or [None]
    if pair is None:
        raise LabError(f"no pair {pair_id}")
    at = str(step).strip() or "last"
    found = [_study_pair_run(db, r, pair.pair_id, at, split) for r in study.run_ids]
    scored = tuple(f for f in found if isinstance(f, StudyPairRun))
    missing = tuple(f for f in found if isinstance(f, MissingRun))
    texts = (pair.direction, pair.source_text, pair.chosen, pair.rejected)
    return StudyPair(study.id, study.name, pair.pair_id, split, *texts, scored, missing)


def _study_pair_run(
    db: Database, run_id: int, pair_id: int, step: str, split: str
) -> StudyPairRun | MissingRun:
    run = runs.get_run(db, run_id)
    if run.status != RunStatus.SUCCEEDED:
        return MissingRun(run.id, run.name, f"not finished ({run.status})")
    try:
        at = runs.resolve_step(db, run.id, split, step)
    except LabError as err:
        return MissingRun(run.id, run.name, str(err))
    with db.read() as session:
        history = queries.pair_history(session, run.id, pair_id)
    s = next((h for h in history if h.split == split and h.step == at), None)
    if s is None:
        return MissingRun(run.id, run.name, f"no {split} score for pair {pair_id} at step {at}")
    stored = stored_tokens(db, run.id, s)
    refs = (s.ref_logp_chosen, s.ref_logp_rejected)
    base = None if None in refs else refs[0] - refs[1]
    config = run.config
    return StudyPairRun(
        *(run.id, run.name, config["objective"]["name"], int(config["train"]["seed"]), at),
        *(s.logp_chosen, s.logp_rejected, s.logp_chosen - s.logp_rejected, s.loss, base),
        *(astuple(stored) if stored else ((), (), (), ())),
    )
