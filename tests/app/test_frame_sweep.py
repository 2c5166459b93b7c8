"""The page script that ends Gradio's leaked status-tracker frame loops (``app.main.JS``) ends only
those: loops that kept asking for a frame through a reference taken before the script ran, as many
requests each frame for 20 frames in a row. A test driver's or an extension's short checks
(Playwright's "stable" check asks for a frame per frame until an element stops moving) are left to
finish: cancelling one left a click in the last CI run waiting forever for its button to be stable."""

import pytest

from app.main import JS
from tests.app.test_browser_e2e import CHROMIUM, LAUNCH_ARGS
from tests.scale.servers import unavailable

# Before the page's script, like Gradio's status tracker: a frame loop through the native function.
LEAK = """
window.__frame = window.requestAnimationFrame.bind(window);
window.__leakFrames = 0;
window.__leak = () => { const loop = () => { window.__leakFrames += 1; window.__frame(loop); };
                        window.__frame(loop); };
"""
# The button moves a pixel a frame for 30 frames (through the page's own, wrapped function), and a loop
# leaks at its 15th frame, while Playwright's check of the button is asking for a frame each frame.
MOVE_AND_LEAK = """() => { const b = document.getElementById('b'); let n = 0;
  const step = () => { b.style.marginLeft = `${++n}px`; if (n === 15) window.__leak();
                       if (n < 30) requestAnimationFrame(step); };
  requestAnimationFrame(step); }"""
PAGE = "<body><button id='b' onclick='window.__clicked = 1'>go</button></body>"


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        unavailable("chromium (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page()
        page.add_init_script(LEAK)
        page.route("http://lab.test/", lambda route: route.fulfill(body=PAGE, content_type="text/html"))
        page.goto("http://lab.test/")
        page.locator("#b").click(trial=True)  # Playwright's page script takes the frame function now
        page.evaluate(JS)
        yield page
        browser.close()


def test_a_leaked_loop_is_ended_within_seconds(page) -> None:
    page.evaluate("() => window.__leak()")
    page.wait_for_timeout(3_000)
    frames = page.evaluate("() => window.__leakFrames")
    page.wait_for_timeout(1_000)
    assert page.evaluate("() => window.__leakFrames") == frames  # nothing ran in the last second
    assert page.evaluate("() => window.__cancelledFrameLoops") >= 1


def test_a_click_waiting_for_a_moving_button_is_not_cancelled_with_the_leak(page) -> None:
    """Under the former rule (any bypassing request 10 frames in a row) Playwright's check was cancelled
    with the leak, and the click waited out its timeout."""
    page.evaluate(MOVE_AND_LEAK)
    page.locator("#b").click(timeout=10_000)
    assert page.evaluate("() => window.__clicked") == 1
    page.wait_for_timeout(3_000)
    frames = page.evaluate("() => window.__leakFrames")
    page.wait_for_timeout(1_000)
    assert frames > 0 and page.evaluate("() => window.__leakFrames") == frames
