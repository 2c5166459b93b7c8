"""Live charts' reads: the metric rows the selected runs logged since the last read (one statement for
all runs, after one for their statuses), and whether any of those runs may still log more."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from capo_lab.database import Database
from storage import queries
from storage.records import MetricRow, RunStatus

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True)
class Seen:
    """Where a run's next read starts: the step and row id of the last row read (none yet: -1, 0)."""

    step: int = -1
    row_id: int = 0


START = Seen()


@dataclass(frozen=True)
class LiveUpdate:
    """``rows``: each selected run's new rows in step order (empty when none); ``cursor``: each selected
    run's last row read; ``active``: some selected run is queued or running, so more rows may come."""

    rows: Mapping[int, tuple[MetricRow, ...]]
    cursor: Mapping[int, Seen]
    active: bool


def key_matcher(keys: Collection[str]) -> Callable[[str], bool]:
    """Whether a metric key is one of ``keys``, where ``key/*`` stands for every key under ``key``: the
    rule ``metrics_since`` reads by, for callers that pick from what it read."""
    exact = frozenset(k for k in keys if not k.endswith("/*"))
    under = tuple(k[:-1] for k in keys if k.endswith("/*"))
    return lambda key: key in exact or key.startswith(under)


def metrics_since(
    db: Database, cursor: Mapping[int, Seen], run_ids: Collection[int], keys: Collection[str]
) -> LiveUpdate:
    """The rows of ``keys`` each run in ``run_ids`` logged after its ``cursor`` entry (from its first row
    when it has none); a key ending in ``/*`` stands for every key under it (``eval_logps/chosen/*``: each
    direction's). Two statements: the runs' statuses, then the rows. Statuses are read first, so a run
    read as finished has every row it logged in the rows read after."""
    ids = list(dict.fromkeys(int(r) for r in run_ids))
    if not ids:
        return LiveUpdate({}, {}, False)
    seen = {r: cursor.get(r, START) for r in ids}
    with db.read() as session:
        statuses = queries.run_statuses(session, ids)
        found = queries.metrics_after(session, {r: (s.step, s.row_id) for r, s in seen.items()}, keys)
    rows = {r: found[r].rows if r in found else () for r in ids}
    moved = {r: Seen(*found[r].last) if r in found else seen[r] for r in ids}
    return LiveUpdate(rows, moved, any(status in ACTIVE for status in statuses.values()))
