"""One run's pairs at a stored evaluation, read from storage: the inspector's table and one pair's detail."""

from __future__ import annotations

from dataclasses import dataclass

from capo_lab import runs
from capo_lab.database import Database
from capo_lab.errors import LabError
from storage import queries
from storage.records import PairScoreRecord

# |Δ| below this many nats: the model barely prefers either response (the report's ambiguity band).
AMBIGUOUS_NATS = 1.0


@dataclass(frozen=True)
class PairRow:
    """One row of the inspector's pair table; ``dl_dlw`` > 0: a step lowers the post-edit's log-prob."""

    pair_id: int
    direction: str
    lw: float
    ll: float
    delta: float
    rrm: float
    loss: float
    reward_margin: float
    dl_dlw: float
    ambiguous: bool
    flipped: bool
    chosen_pushed_down: bool


@dataclass(frozen=True)
class MarginPoint:
    """The pair at one evaluation step: Δ = lw − ll, loss and reward margin."""

    step: int
    delta: float
    loss: float
    reward_margin: float


@dataclass(frozen=True)
class PairTokens:
    """Per-token log-probs stored at that evaluation, with the run's tokens as text."""

    chosen_tokens: tuple[str, ...]
    chosen_logps: tuple[float, ...]
    rejected_tokens: tuple[str, ...]
    rejected_logps: tuple[float, ...]


def stored_tokens(db: Database, run_id: int, score: PairScoreRecord) -> PairTokens | None:
    """Per-token log-probs stored by the trainer at that evaluation, with the run's tokens as text;
    None when that step has none stored (runs trained before the lab stored them)."""
    with db.read() as session:
        pieces = queries.token_pieces(session, run_id, score.pair_id)
    if pieces is None or not score.chosen_token_logps:
        return None
    chosen, rejected = (tuple(p) for p in pieces)
    return PairTokens(chosen, tuple(score.chosen_token_logps), rejected, tuple(score.rejected_token_logps))


@dataclass(frozen=True)
class PairDetail:
    """A pair's texts, its scores at ``step``, Δ across the run's evaluations and (when stored) tokens."""

    run_id: int
    step: int
    pair_id: int
    direction: str
    source: str
    prompt: str
    chosen: str
    rejected: str
    score: PairScoreRecord
    history: tuple[MarginPoint, ...]
    tokens: PairTokens | None


def pair_row(s: PairScoreRecord) -> PairRow:
    delta, dl_dlw = s.logp_chosen - s.logp_rejected, sum(s.grad_chosen.values())
    return PairRow(
        pair_id=s.pair_id,
        direction=s.direction,
        lw=s.logp_chosen,
        ll=s.logp_rejected,
        delta=delta,
        rrm=s.rrm,
        loss=s.loss,
        reward_margin=s.reward_margin,
        dl_dlw=dl_dlw,
        ambiguous=abs(delta) < AMBIGUOUS_NATS,
        flipped=delta < 0,
        chosen_pushed_down=dl_dlw > 0,
    )


def pair_table(db: Database, run_id: int, step: int | str, split: str = "eval") -> list[PairRow]:
    return [pair_row(s) for s in runs.pair_scores(db, run_id, split, str(step))]


def pair_detail(
    db: Database, run_id: int, pair_id: int, step: int | str, split: str = "eval", with_tokens: bool = True
) -> PairDetail:
    """Texts, numbers, gradients by term, Δ across steps and (optionally) per-token log-probs."""
    run = runs.get_run(db, run_id)
    at = runs.resolve_step(db, run.id, split, str(step))
    with db.read() as session:
        (pair,) = queries.get_pairs(session, [int(pair_id)]) or [None]
        history = [h for h in queries.pair_history(session, run.id, int(pair_id)) if h.split == split]
    score = next((h for h in history if h.step == at), None)
    if pair is None or score is None:
        raise LabError(f"pair {pair_id} has no {split} score at step {at} in run {run.id}")
    tokens = stored_tokens(db, run.id, score) if with_tokens else None
    return PairDetail(
        run_id=run.id,
        step=at,
        pair_id=pair.pair_id,
        direction=pair.direction,
        source=pair.source_text,
        prompt=pair.prompt,
        chosen=pair.chosen,
        rejected=pair.rejected,
        score=score,
        history=tuple(
            MarginPoint(h.step, h.logp_chosen - h.logp_rejected, h.loss, h.reward_margin) for h in history
        ),
        tokens=tokens,
    )
