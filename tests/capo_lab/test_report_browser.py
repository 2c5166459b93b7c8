"""A real tiny study (capo, dpo × 2 seeds on the smoke model) reported with `capo-lab report --format html`:
the page opens offline in headless Chromium with no page or console error, every figure drawn, and the
study's markup-laden name shown as text. The Studies tab draws the same items from the real service."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.tab_studies import report_view
from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.report_figures import ITEM_KEYS, report_items
from capo_lab.reports import study_report
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.conftest import DIVEMT
from worker.consumer import serve

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update"]  # fmt: skip
STUDY = "<b>cmp</b>"
ALWAYS_DRAWN = {"accuracy", "accuracy-all", "differences", "loss", "regimes", "regime-accuracy", "ambiguity"}


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """(study id, path of its HTML report) in a lab home of this module's own."""
    root = tmp_path_factory.mktemp("report-study")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPO_LAB_HOME", str(root / "lab-home"))
        patch.delenv("CAPO_LAB_DB_URL", raising=False)
        patch.delenv("CAPO_LAB_QUEUE_URL", raising=False)
        cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
        made = cli("study", str(SMOKE), "--name", STUDY, "--objectives", "capo,dpo", "--seeds", "0,1",
                   "--set", "train.epochs=1", "--set", "train.eval_splits=[eval,validation]")  # fmt: skip
        study_id = made.stdout.split()[-1]
        assert serve(max_jobs=4, poll_seconds=0.1) == 4
        page = root / "report.html"
        assert cli("report", study_id, "--format", "html", "--out", str(page)).stdout.startswith("wrote")
        yield int(study_id), page


def drawn_keys(study_id: int) -> set[str]:
    report = study_report(Database(Settings().database_url), study_id, "best", "eval")
    return {i.key for i in report_items(report) if i.figure is not None}


def open_page(path: Path, check) -> None:
    """Open ``path`` in headless Chromium, hand the page to ``check``; page and console errors fail."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.route(
            "**/*", lambda route: route.abort() if route.request.url.startswith("http") else route.continue_()
        )
        page.goto(path.as_uri())
        check(page)
        browser.close()
    assert errors == []


@pytest.mark.slow
def test_html_report_opens_in_chromium_with_every_figure(study) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium for the browser test")
        pytest.skip("no /usr/bin/chromium here (apt-get install chromium)")
    from playwright.sync_api import expect

    study_id, path = study
    drawn = drawn_keys(study_id)
    assert ALWAYS_DRAWN <= drawn

    def check(page) -> None:
        for key in ITEM_KEYS:
            if key in drawn:
                page.wait_for_function(
                    f"() => {{ const p = document.querySelector('#fig-{key}.js-plotly-plot');"
                    " return p && p.data && p.data.length > 0 && p.querySelector('.main-svg'); }",
                    timeout=30_000,
                )
            else:
                expect(page.locator(f"#note-{key}")).to_contain_text("No figure: ")
        assert sorted(
            page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.id)")
        ) == (sorted(f"fig-{key}" for key in drawn))
        expect(page.locator("h1")).to_have_text(f"Study report: {STUDY}")
        expect(page.locator("b")).to_have_count(0)
        expect(page.locator("table.runs")).to_contain_text(f"{STUDY}[capo, seed=0]")
        expect(page.locator("#fig-loss .legendtext").first).to_have_text(f"{STUDY}[capo, seed=0]")

    open_page(path, check)


def test_studies_tab_draws_the_same_items_as_the_page(study) -> None:
    study_id, path = study
    out = report_view(LabService(), study_id, "best", "eval")
    shown = {key for key, plot in zip(ITEM_KEYS, out[4::2], strict=True) if plot["visible"]}
    assert shown == drawn_keys(study_id) and ALWAYS_DRAWN <= shown
    assert {f"fig-{key}" for key in shown} <= {part.split('"')[0] for part in path.read_text().split('id="')}
    assert list(out[1]["status"]) == ["succeeded"] * 4
