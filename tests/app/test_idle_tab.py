"""An idle Runs tab stays idle (issue 20 item 12): with a finished run selected nothing ticks, nothing is
asked of the server and no chart is drawn again; a chart of a few points is SVG, so it holds no WebGL
context (Chromium allows 16 a page and, without a GPU, draws them in software)."""

from pathlib import Path

import gradio as gr
import pytest

from app.charts import WEBGL_POINTS, Point, line_chart
from app.main import build_app
from app.tab_runs import REFRESH_SECONDS
from capo_lab.service import LabService
from capo_lab.settings import Settings
from storage import writes
from tests.app.test_browser_e2e import CHROMIUM, LAUNCH_ARGS, pick, server_without_worker  # noqa: F401
from tests.app.ui_events import SKIP, by_id, component, run

ACCURACY, MARGIN = "lw > ll (the paper's)", "Δ = lw − ll (the same for every objective)"
# Before any of the page's scripts: counts the animation-frame callbacks that run, including those of
# modules that keep their own reference to requestAnimationFrame (Gradio's StatusTracker does).
COUNT_FRAMES = """
window.__frames = 0;
const requestFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) =>
  requestFrame((time) => { window.__frames += 1; return callback(time); });
"""
RUNNING_FOREVER = """() => document.getAnimations().filter(a => a.playState === 'running'
  && a.effect && a.effect.getComputedTiming().iterations === Infinity).map(a => a.animationName || 'a')"""


def finished_run(home: Path, status: str = "succeeded") -> int:
    """A run that logged 50 training steps and 5 evaluations, then ended with ``status``."""
    service = LabService(Settings(home=home))
    rows = [(s, "loss", 1 / s) for s in range(1, 51)] + [(s, "eval_loss", 2 / s) for s in range(10, 51, 10)]
    with service.db.write() as session:
        run_id = writes.add_run(
            session, "idle", {"objective": {"name": "capo", "alpha": 1.0}}, None, "running"
        )
        writes.add_metrics(session, run_id, rows)
        writes.update_run(session, run_id, status=status, step=50)
    return run_id


def timer_of(demo: gr.Blocks, elem_id: str, event: str) -> gr.Timer:
    """The timer among the outputs of ``event`` of ``elem_id``."""
    block = component(demo, elem_id)
    for f in demo.fns.values():
        if (block._id, event) in [tuple(t) for t in f.targets]:
            return next(o for o in f.outputs if isinstance(o, gr.Timer))
    raise LookupError(elem_id)


def test_selecting_a_finished_run_draws_once_and_stops_the_charts_timer(tmp_path: Path) -> None:
    service = LabService(Settings(home=tmp_path / "home"))
    run_id = finished_run(tmp_path / "home")
    demo = build_app(service)
    timer = timer_of(demo, "runs-select", "input")
    assert timer.active is False  # built idle: nothing selected
    outputs, values = run(demo, "runs-select", "input", [run_id], None, True, ACCURACY, MARGIN)
    shown = by_id(outputs, values)
    assert shown["loss-chart"] is not None and shown["runs-status"] == ""
    assert values[outputs.index(timer)].active is False  # a finished run logs nothing more
    state = values[0]
    handler = next(f for f in demo.fns.values() if (timer._id, "tick") in [tuple(t) for t in f.targets])
    ticked = list(handler.fn([run_id], state, True, ACCURACY, MARGIN))  # a tick already on its way
    assert ticked[1:12] == [SKIP] * 11 and ticked[12].active is False


def test_only_an_emptied_run_list_is_acted_on_when_the_pickers_change(tmp_path: Path) -> None:
    """Gradio 6.31 fires a multiselect's ``change`` again, its value unchanged, as the answers of its
    own listeners arrive: with two listeners on the run list, a loaded CI machine sent 79 events in 12
    idle seconds. The pickers are listened to on ``input``; the run list's one ``change`` listener (its
    Clear button fires no ``input``) answers an echo with nothing."""
    service = LabService(Settings(home=tmp_path / "home"))
    run_id = finished_run(tmp_path / "home")
    demo = build_app(service)
    pickers = {component(demo, "runs-select")._id}
    pickers |= {
        b._id
        for b in demo.blocks.values()
        if getattr(b, "label", None) in ("Reward accuracy", "Split to translate")
    }
    listened = sorted((t[1], t[0]) for f in demo.fns.values() for t in f.targets if t[0] in pickers)
    assert len(pickers) == 3
    assert [event for event, _ in listened] == ["change", "input", "input", "input"]
    assert listened[0][1] == component(demo, "runs-select")._id
    _, drawn = run(demo, "runs-select", "input", [run_id], None, True, ACCURACY, MARGIN)
    state = drawn[0]
    for echo in ([run_id], None):  # the selection unchanged; an empty list with nothing drawn
        _, answer = run(
            demo, "runs-select", "change", echo, state if echo else None, True, ACCURACY, MARGIN, "eval"
        )
        assert answer == [SKIP] * len(answer)


def test_the_clear_button_empties_the_charts_and_shows_the_hint(tmp_path: Path) -> None:
    service = LabService(Settings(home=tmp_path / "home"))
    run_id = finished_run(tmp_path / "home")
    demo = build_app(service)
    _, drawn = run(demo, "runs-select", "input", [run_id], None, True, ACCURACY, MARGIN)
    outputs, values = run(demo, "runs-select", "change", [], drawn[0], True, ACCURACY, MARGIN, "eval")
    shown = by_id(outputs, values)
    assert values[0] is None and shown["loss-chart"] is None and shown["runs-status"] == ""
    assert len(shown["evaluation-jobs"]) == 0  # the jobs table emptied too, not skipped
    assert shown["runs-hint"].visible is True
    charts = next(v for o, v in zip(outputs, values, strict=True) if isinstance(o, gr.Column))
    assert charts.visible is False


def test_a_running_run_keeps_the_charts_timer_ticking(tmp_path: Path) -> None:
    service = LabService(Settings(home=tmp_path / "home"))
    run_id = finished_run(tmp_path / "home", status="running")
    demo = build_app(service)
    timer = timer_of(demo, "runs-select", "input")
    outputs, values = run(demo, "runs-select", "input", [run_id], None, True, ACCURACY, MARGIN)
    assert values[outputs.index(timer)].active is True and timer.value == REFRESH_SECONDS


def test_a_chart_of_few_points_is_svg_and_one_of_many_webgl() -> None:
    few = [Point("#1", s, "loss", 1 / s) for s in range(1, 200)]
    assert {t.type for t in line_chart(few, ["loss"], "Loss").data} == {"scatter"}
    many = [Point(f"#{r}", s, "loss", 1 / s) for r in range(12) for s in range(1, 2001)]
    assert len(many) > WEBGL_POINTS
    assert {t.type for t in line_chart(many, ["loss"], "Loss").data} == {"scattergl"}


@pytest.mark.slow
def test_an_idle_runs_tab_asks_nothing_of_the_server_and_makes_no_webgl_context(
    tmp_path,
    server_without_worker,  # noqa: F811  (the run is written here, finished: no job for a worker)
):
    """In Chromium, a finished run selected: over 12 s (6 ticks' worth) no event reaches the server's
    queue (nor over 4 s once the list's Clear button has hidden the charts), no chart is drawn again,
    the console says nothing about WebGL, nothing animates forever and no animation-frame loop runs
    (the app's loading screen's timer outlived it, app.main.JS: a frame each 1/60 s, 5-7 % of a
    core)."""
    from playwright.sync_api import expect, sync_playwright

    url, _ = server_without_worker
    run_id = finished_run(tmp_path / "home")  # after start-up: listed when the tab is opened
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console, joins = [], []
        page.on("console", lambda message: console.append(message.text))
        page.on("request", lambda request: joins.append(request.url) if "queue/join" in request.url else None)
        page.add_init_script(COUNT_FRAMES)
        page.goto(url)
        page.get_by_role("tab", name="Runs").click(timeout=60_000)
        pick(page, "runs-select", f"#{run_id}")
        page.wait_for_function(
            "() => { const p = document.querySelector('#loss-chart .js-plotly-plot');"
            " return p && p.data && p.data.some(t => t.x && t.x.length > 1); }",
            timeout=60_000,
            polling=250,  # by timer: a frame-polling wait is a loop app.main.JS may end
        )
        page.wait_for_timeout(3_000)  # the selection's own events end
        before, frames = len(joins), page.evaluate("() => window.__frames")
        page.wait_for_timeout(6 * REFRESH_SECONDS * 1000)
        idle_joins = joins[before:]
        idle_frames = page.evaluate("() => window.__frames") - frames
        forever = page.evaluate(RUNNING_FOREVER)
        traces = page.evaluate("() => document.querySelector('#loss-chart .js-plotly-plot').data[0].type")
        page.locator("#runs-select [title=Clear]").click()  # fires change, not input (Gradio 6.31)
        expect(page.locator("#runs-hint")).to_be_visible(timeout=30_000)
        expect(page.locator("#loss-chart")).to_be_hidden()
        page.wait_for_timeout(3_000)  # the clearing's own events end
        cleared = len(joins)
        page.wait_for_timeout(2 * REFRESH_SECONDS * 1000)
        idle_after_clearing = joins[cleared:]
        browser.close()
    assert idle_joins == [] and idle_after_clearing == []
    assert idle_frames < 60, f"{idle_frames} animation frames ran in {6 * REFRESH_SECONDS} idle seconds"
    assert forever == []
    assert [m for m in console if "webgl" in m.lower()] == []
    assert traces == "scatter"
