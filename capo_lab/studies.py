"""Studies: a named grid of runs on one dataset that differ only in declared factors.

A factor is a config key with its values (``objective.name=capo,dpo``,
``objective.alpha=0.5,1,2``, ``train.seed=0,1,2``). The grid is their product.
An ``objective.*`` parameter applies only to the objectives that have it (varying
α with ``--objectives capo,dpo`` gives one DPO run per seed, not one per α).
Every config is validated before anything is queued; a bad key or value is refused
naming it. Run names say the settings that differ: ``study[capo, alpha=2, seed=0]``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from capo.config import OBJECTIVE_CONFIGS as OBJECTIVES
from capo.config import ConfigError, RunConfig, apply_overrides, config_from_dict
from capo_lab import runs
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.lifecycle import check_chat_template, submit
from storage import queries, writes
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
    configs, seen = [], set()
    for combo in itertools.product(*factors.values()):
        settings = {k: v for k, v in zip(factors, combo, strict=True)}
        settings = {k: v for k, v in settings.items() if _applies(k, settings, raw)}
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        if key in seen:
            continue
        seen.add(key)
        extra = [f"{k}={_yaml_value(v)}" for k, v in settings.items()]
        try:
            cfg = config_from_dict(apply_overrides(raw, [*overrides, *extra]))
        except ConfigError as err:
            raise LabError(str(err)) from None
        configs.append(cfg.model_copy(update={"name": _run_name(name.strip(), settings)}))
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
    """Create the study and its runs (queued), then enqueue them; returns (study id, run ids)."""
    for cfg in plan.configs:
        check_chat_template(cfg)
    with db.write() as session:
        study_id = writes.add_study(session, plan.name, plan.factors)
    return study_id, submit(db, plan.configs, enqueue, study_id)


def get_study(db: Database, name_or_id: str | int) -> StudyRecord:
    with db.read() as session:
        found = queries.find_study(session, name_or_id)
    if found is None:
        raise LabError(f"no study named or numbered {name_or_id!r}; see `capo-lab studies`")
    return found


def list_studies(db: Database) -> list[StudyRecord]:
    with db.read() as session:
        return queries.studies(session)


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
    stored = runs.stored_tokens(db, run.id, s) or {}
    keys = ("chosen_tokens", "chosen_logps", "rejected_tokens", "rejected_logps")
    refs = (s.ref_logp_chosen, s.ref_logp_rejected)
    base = None if None in refs else refs[0] - refs[1]
    config = run.config
    return StudyPairRun(
        *(run.id, run.name, config["objective"]["name"], int(config["train"]["seed"]), at),
        *(s.logp_chosen, s.logp_rejected, s.logp_chosen - s.logp_rejected, s.loss, base),
        *(tuple(stored.get(k, ())) for k in keys),
    )
