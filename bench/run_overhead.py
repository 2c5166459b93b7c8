"""run_overhead: a paper-cpu run's wall time over the time it spends doing the work it must do.

    .venv/bin/python bench/run_overhead.py            # short: paper-cpu, 4 steps (evaluated at 0 and 4)
    .venv/bin/python bench/run_overhead.py --full     # the preset as shipped (the README's first run)
    .venv/bin/python bench/run_overhead.py --set train.eval_every=4   # any override, as `capo-lab train`

From a fresh temporary CAPO_LAB_HOME, the README's import (``capo-lab data import``, not timed) and then
``capo-lab train configs/paper-cpu.yaml``, both through the CLI's own commands in this process. The
trainer's clock (``capo.train.RunResult.seconds``) says where the training job's time went; the
translation at the end (``train.generate_at_end``) is timed around ``worker.evaluate``'s loading and
generating. It prints

    run_overhead = wall time of the train command / (seconds in training steps + base scoring +
                   evaluation scoring)

i.e. the work a run must do is its optimizer steps and the forward passes of its scores (the base
model's reference pass, each evaluation's passes); everything else (loading, tokenising, writing
scores and checkpoints, translating at the end) is overhead. No reference run is needed: both sides are
measured in the same run. Run it under ``nice`` on a shared machine and read the load average it
prints beside the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAPO_LAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
IMPORT = [
    "data", "import",
    str(SHARED / "divemt/warmup.tsv"),
    str(SHARED / "mlqe-pe/post-editing/train/en-de-train.tar.gz"),
    str(SHARED / "mlqe-pe/post-editing/train/en-zh-train.tar.gz"),
    "--name", "paper8-cpu", "--per-direction", "8", "--keep-ties",
]  # fmt: skip
SHORT = ["train.max_steps=4", "train.eval_every=4", "train.checkpoint_every=4"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Timed:
    """Wraps a module's function, adding its wall seconds to ``seconds[key]`` and keeping its results."""

    def __init__(self, module, name: str, key: str, seconds: dict[str, float], results: list) -> None:
        self.inner = getattr(module, name)
        setattr(module, name, self)
        self.key, self.seconds, self.results = key, seconds, results

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            out = self.inner(*args, **kwargs)
        finally:
            self.seconds[self.key] = self.seconds.get(self.key, 0.0) + time.perf_counter() - started
        self.results.append(out)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the preset as shipped (default: 4 steps)")
    parser.add_argument("--config", default=str(ROOT / "configs/paper-cpu.yaml"))
    parser.add_argument("--set", action="append", default=[], help="section.key=value, as capo-lab train")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="capo-run-overhead-")
    os.environ["CAPO_LAB_HOME"] = home  # before the lab reads its settings
    from typer.testing import CliRunner

    from capo_lab.cli import app

    cli = CliRunner()
    started = time.perf_counter()
    imported = cli.invoke(app, IMPORT)
    print(f"import: {time.perf_counter() - started:.1f} s (not counted), exit {imported.exit_code}")
    if imported.exit_code:
        sys.exit(imported.output)

    import capo.generate
    import worker.evaluate
    import worker.execute

    seconds: dict[str, float] = {}
    results: list = []
    Timed(worker.execute, "train_run", "training job", seconds, results)
    Timed(worker.evaluate, "evaluate_at_end", "translating at the end", seconds, [])
    Timed(capo.generate, "load_generation_model", "  loading the generation model", seconds, [])
    Timed(worker.evaluate, "translate", "  generating", seconds, [])

    overrides = [x for s in ([] if args.full else SHORT) + args.set for x in ("--set", s)]
    print(f"train {Path(args.config).name} {' '.join(overrides)}  (load average before: {load()})")
    started = time.perf_counter()
    trained = cli.invoke(app, ["train", args.config, *overrides])
    wall = time.perf_counter() - started
    print(trained.output.rstrip())
    if trained.exit_code or not results:
        sys.exit(f"train failed (exit {trained.exit_code}): {trained.exception!r}")
    phases = results[-1].seconds
    work = phases["steps"] + phases["base_scoring"] + phases["eval_scoring"]
    print(f"\nwhere the {wall:.1f} s went (load average after: {load()}; home {home})")
    rows = [(f"  trainer: {k}", v) for k, v in phases.items() if k != "total"]
    rows.append(("  trainer: other (notes, metrics, evaluation's aggregates)", phases["total"] - sum(
        v for k, v in phases.items() if k != "total"
    )))  # fmt: skip
    rows.append(
        ("  job around the trainer (prepare data, database)", seconds["training job"] - phases["total"])
    )
    for key in ("translating at the end", "  loading the generation model", "  generating"):
        rows.append((key, seconds.get(key, 0.0)))
    counted = seconds["training job"] + seconds.get("translating at the end", 0.0)
    rows.append(("command itself (claim, submit, finish, print)", wall - counted))
    for name, value in rows:
        print(f"{name:<62} {value:8.1f} s {100 * value / wall:5.1f} %")
    print(f"work = steps + base scoring + eval scoring = {work:.1f} s; wall = {wall:.1f} s")
    print(f"run_overhead={wall / work:.2f}")


if __name__ == "__main__":
    main()
