"""What follows a change of the Runs tab's selection: the hint or the charts, the selection's evaluation
jobs, and the charts cleared when the list's Clear button empties it.

Gradio 6.31 fires a multiselect's ``change`` again, its value unchanged, as the answers of its
listeners arrive (79 events in 12 idle seconds on a loaded CI machine with two listeners), and its
Clear button fires ``change`` but not ``input``. So the tab redraws on ``input``, chains the rest after
each redraw (``follow``), and its one ``change`` listener acts only on an emptied list whose charts
still show (``wire_clear``): an echo answers with nothing to update."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

NOTHING_SELECTED = (
    "**No run selected.** Pick one or more runs in the list above (type to search; several overlay, one "
    "colour each) to see their reward accuracy per direction, loss, margins, regime shares and Δr "
    "distribution. No run yet? Queue one in the **Train** tab."
)


def selection_shown(run_ids: list | None) -> list:
    """[the hint, the charts]: the hint says what to do while no run is selected, the charts show once
    one is."""
    return [gr.Markdown(visible=not run_ids), gr.Column(visible=bool(run_ids))]


def follow(redraws, selected: gr.Dropdown, shown: list, show_jobs: tuple) -> None:
    """After a redraw of the selection's charts: ``shown`` (the hint, the charts) and its evaluation
    jobs (``show_jobs``: the function, inputs and outputs ``build_evaluations`` returns)."""
    redraws.then(selection_shown, selected, shown)
    redraws.then(*show_jobs)


def wire_clear(selected: gr.Dropdown, redraw: Callable, inputs: list, every: list, shown: list, show_jobs):
    """The Clear button's emptied list: the charts, the hint and the jobs as for no run. ``redraw``,
    ``inputs`` and ``every`` are ``wire_live``'s (inputs: the selection, the LiveCharts state, the Live
    checkbox, the two pickers)."""
    show_choice, (_, split), job_outputs = show_jobs
    outputs = [*every, *shown, *job_outputs]

    def on_change(run_ids, current, is_live, which, margin, which_split):
        if run_ids or current is None:  # an echo of a selection, or nothing drawn to clear
            return [gr.skip()] * len(outputs)
        drawn = redraw([], current, is_live, which, margin)
        return [*drawn, *selection_shown([]), *show_choice([], which_split)]

    selected.change(on_change, [*inputs, split], outputs)
