"""An idle Runs tab: a finished run selected, nothing else happening; how busy does the browser stay?

Builds a lab in a temporary home with one finished run (its metrics written directly, no training),
starts ``capo-lab serve --no-worker`` on it, opens the Runs tab in headless Chromium (the flags the
browser tests use), selects the run, waits for its loss chart, and then, for ``--minutes``, samples
the CPU time of the Chromium processes started for it. Every ``--every`` seconds it prints one line:
the renderer processes' CPU as a percentage of one core over that interval, all Chromium processes'
(the GPU process draws WebGL in software here), the console messages mentioning WebGL so far, the
WebGL contexts the page asked for so far, and the plot updates the page received so far. At the end,
one summary line (JSON).

    python bench/idle_tab.py --minutes 30
    python bench/idle_tab.py --minutes 1 --every 5 --steps 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capo_lab.service import LabService  # noqa: E402
from capo_lab.settings import Settings  # noqa: E402
from storage import writes  # noqa: E402
from worker.launch import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [  # those of tests/app/test_browser_e2e.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
# Counts, in the page, the WebGL contexts asked for and the plots Plotly draws.
COUNTERS = """
window.__webgl = 0;
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
  if (String(kind).includes('webgl')) window.__webgl += 1;
  return getContext.call(this, kind, ...rest);
};
"""
TRAINING = ("loss", "rewards/accuracies", "learning_rate", "throughput/pairs_per_second")
EVALUATION = ("eval_loss", "eval_rewards/accuracies", "eval_logps/chosen", "eval_logps/rejected")


def finished_run(home: Path, steps: int) -> int:
    """A lab under ``home`` with one finished CAPO run that logged ``steps`` training steps and an
    evaluation every 10th; returns its id."""
    service = LabService(Settings(home=home))
    rows = [(s, key, 1 / s + i / 10) for s in range(1, steps + 1) for i, key in enumerate(TRAINING)]
    rows += [(s, key, 0.5 + i / 10) for s in range(10, steps + 1, 10) for i, key in enumerate(EVALUATION)]
    config = {"objective": {"name": "capo", "alpha": 1.0, "beta": 0.1}}
    with service.db.write() as session:
        run_id = writes.add_run(session, "idle", config, None, "running")
        writes.add_metrics(session, run_id, rows)
        writes.update_run(session, run_id, status="succeeded", step=steps)
    return run_id


def serve(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``capo-lab serve --no-worker`` on ``home``, once it answers; its process and its address."""
    port = free_port()
    env = {**os.environ, "CAPO_LAB_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "capo_lab", "serve", "--no-worker", "--port", str(port)],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(c.laddr.port == port for c in psutil.net_connections("tcp") if c.status == "LISTEN"):
            return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the lab did not start:\n" + log.read_text()[-2000:])


def chromium_processes() -> dict[int, psutil.Process]:
    """The Chromium processes this script started, by pid."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                found[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_seconds(processes: dict[int, psutil.Process], renderers_only: bool) -> float:
    """User + system CPU seconds of ``processes`` (only ``--type=renderer`` ones if asked)."""
    total = 0.0
    for process in processes.values():
        try:
            if renderers_only and "--type=renderer" not in process.cmdline():
                continue
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def open_runs_tab(page, url: str, run_id: int) -> None:
    """The Runs tab with ``run_id`` selected and its loss chart drawn."""
    page.goto(url)
    page.get_by_role("tab", name="Runs").click(timeout=120_000)
    page.locator("#runs-select input").click()
    page.get_by_role("option").filter(has_text=f"#{run_id}").first.click()
    page.wait_for_function(
        "() => { const p = document.querySelector('#loss-chart .js-plotly-plot');"
        " return p && p.data && p.data.some(t => t.x && t.x.length > 1); }",
        timeout=120_000,
    )
    page.wait_for_timeout(10_000)  # the other charts of the selection arrive
    # Gradio draws every plot with Plotly.react (window.Plotly): count the draws from now on.
    page.evaluate(
        "() => { window.__draws = 0; const react = window.Plotly.react; window.Plotly.react ="
        " function (...args) { window.__draws += 1; return react.apply(this, args); }; }"
    )


def sample(page, minutes: float, every: float, console: list[str]) -> dict:
    """Print one line per ``every`` seconds for ``minutes``; returns the summary."""
    processes = chromium_processes()
    start = last = time.monotonic()
    renderer0 = renderer = cpu_seconds(processes, True)
    all0 = everything = cpu_seconds(processes, False)
    rows = []
    while last - start < minutes * 60:
        time.sleep(every)
        processes.update(chromium_processes())
        now, r, a = time.monotonic(), cpu_seconds(processes, True), cpu_seconds(processes, False)
        webgl = sum("webgl" in m.lower() for m in console)
        counts = page.evaluate("() => [window.__webgl || 0, window.__draws || 0]")
        row = {
            "elapsed_s": round(now - start),
            "renderer_cpu_percent_of_core": round(100 * (r - renderer) / (now - last), 1),
            "all_chromium_cpu_percent_of_core": round(100 * (a - everything) / (now - last), 1),
            "webgl_console_messages": webgl,
            "webgl_contexts_requested": counts[0],
            "plotly_draws_since_selected": counts[1],
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        last, renderer, everything = now, r, a
    elapsed = last - start
    return {
        "minutes": round(elapsed / 60, 1),
        "cpu_percent_of_core": round(100 * (renderer - renderer0) / elapsed, 1),
        "all_chromium_cpu_percent_of_core": round(100 * (everything - all0) / elapsed, 1),
        "last_interval_cpu_percent_of_core": rows[-1]["renderer_cpu_percent_of_core"] if rows else None,
        "webgl_console_messages": sum("webgl" in m.lower() for m in console),
        "webgl_contexts_requested": rows[-1]["webgl_contexts_requested"] if rows else None,
        "plotly_draws_since_selected": rows[-1]["plotly_draws_since_selected"] if rows else None,
        "webgl_messages_seen": sorted({m[:200] for m in console if "webgl" in m.lower()})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to sample (default 30)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between lines (default 60)")
    parser.add_argument("--steps", type=int, default=2000, help="training steps the run logged")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="capo-idle-tab-") as tmp:
        home = Path(tmp) / "home"
        run_id = finished_run(home, args.steps)
        server, url = serve(home, Path(tmp) / "serve.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))
                page.add_init_script(COUNTERS)
                open_runs_tab(page, url, run_id)
                summary = sample(page, args.minutes, args.every, console)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print("summary " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
