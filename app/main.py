"""Assemble the tabs into one Gradio Blocks app; nothing else lives here."""

from __future__ import annotations

import warnings

import gradio as gr

from app import tab_benchmarks, tab_data, tab_export, tab_inspect, tab_runs, tab_studies, tab_train

CSS = """
.heatmap { line-height: 1.9; font-family: ui-monospace, monospace; white-space: pre-wrap; }
.heatmap .tok { padding: 1px 0; border-radius: 2px; }
.diff del { background: #fee2e2; } .diff ins { background: #dcfce7; text-decoration: none; }
#preview-pair td { white-space: pre-wrap; padding: 4px 8px; }
"""

# Gradio 6.31's StatusTracker keeps its elapsed-time requestAnimationFrame loop running when it is
# destroyed while "pending", and the app's own loading screen is destroyed that way on every page
# load: an idle tab then asks for a frame 60 times a second for as long as it is open (5-7 % of a
# core in headless Chromium, issue 20 item 12). The tracker's module captured the native
# requestAnimationFrame before any script of ours runs, so the loop is reachable only by its id:
# later callers go through a wrapper that notes theirs, and requests that bypass it, as many each
# frame for 20 frames in a row while no tracker is pending, are cancelled. A test driver's or an
# extension's short check joins the count and so resets it: Playwright's "is the button stable"
# check (a frame or two) was cancelled with a leaked loop under the former rule (any bypassing
# request 10 frames in a row), and its click waited forever. The sweep stops after 120 frames with
# no bypassing request (a minute at most). Drop this once Gradio stops the timer on destroy.
JS = """
() => {
  const native = window.requestAnimationFrame.bind(window);
  const cancel = window.cancelAnimationFrame.bind(window);
  const noted = new Set();
  window.requestAnimationFrame = (callback) => {
    const id = native(callback);
    noted.add(id);
    if (noted.size > 1000) noted.delete(noted.values().next().value);
    return id;
  };
  // Frame requests that bypassed the wrapper, as many each frame for `steady` frames in a row, are
  // such loops; other such requesters (a browser extension, a test driver) come and go, and each
  // coming or going changes the count. The sweep runs after the page loads and whenever the page
  // changes (a loop leaks when the answer to an event mounts components), and stops once nothing
  // bypassed for 2 s: an idle page runs no frames.
  let last = 0, count = 0, steady = 0, quiet = 0, frames = 0, sweeping = false;
  const sweep = () => {
    const now = native(() => {});
    cancel(now);
    frames += 1;
    const bypassed = [];
    for (let id = last + 1; id < now; id++) if (!noted.has(id)) bypassed.push(id);
    last = now;
    // A mounted tracker that is pending shows its timer (.progress-text): its loop is legitimate.
    const pending = document.querySelector('[data-testid="status-tracker"] .progress-text');
    steady = bypassed.length > 0 && bypassed.length === count && !pending ? steady + 1 : 0;
    count = bypassed.length;
    quiet = bypassed.length === 0 ? quiet + 1 : 0;
    if (steady >= 20) {
      bypassed.forEach(cancel);
      window.__cancelledFrameLoops = (window.__cancelledFrameLoops || 0) + bypassed.length;
      steady = 0;
    }
    if (quiet < 120 && frames < 3600) noted.add(native(sweep));
    else sweeping = false;
  };
  const start = () => {
    frames = 0;
    quiet = 0;
    if (sweeping) return;
    sweeping = true;
    steady = 0;
    last = native(() => {});
    cancel(last);
    noted.add(native(sweep));
  };
  new MutationObserver(start).observe(document.body, { childList: true, subtree: true });
  start();
}
"""


def build_app(service) -> gr.Blocks:
    with warnings.catch_warnings():  # Gradio 6 wants js= at launch(); capo-lab serve passes css= only
        warnings.filterwarnings("ignore", "The parameters have been moved", UserWarning)
        demo = gr.Blocks(title="CAPO Lab", js=JS)
    with demo:
        gr.Markdown(
            "# CAPO Lab\nMultilingual preference optimization on MTPE data: CAPO, DPO, SimPO, DPO+NLL."
        )
        with gr.Tabs() as tabs:
            tab_data.build(service)
            tab_train.build(service)
            tab_runs.build(service)
            tab_studies.build(service)
            tab_inspect.build(service)
            benchmarks_timer = tab_benchmarks.build(service)
            tab_export.build(service)
        tab_benchmarks.stop_when_left(tabs, benchmarks_timer)
    return demo
