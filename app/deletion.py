"""A delete button that acts only with its "I understand" box ticked, its errors said inline.

A refusal (nothing chosen, the box not ticked, a run still running) is a line under the button: the
list keeps its content, and the box is unticked, so a stale confirmation is never submitted with
another choice."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from app.common import markdown_text
from app.inline import KEEP, resetting_errors


def deletion_markdown(done) -> str:
    """What a delete removed, in one line, then one line per folder that could not be removed."""
    study = f"study {markdown_text(done.study)} and " if done.study is not None else ""
    ids = ", ".join(f"#{r}" for r in done.run_ids) or "none"
    text = f"Deleted {study}{len(done.run_ids)} run(s) ({ids}); {len(done.removed)} folder(s) removed."
    return "\n\n".join([text, *(f"⚠️ Could not remove {markdown_text(left)}" for left in done.left)])


def confirmed_delete(what: str, button: str, elem_id: str, view: Callable, target):
    """``view(target's value, ticked)`` returns [message, target update, the box unticked] once deleted,
    or raises a user error; returns the click's event, for other events to follow a delete."""
    with gr.Row():
        sure = gr.Checkbox(False, label=f"I understand: {what} go for good")
        delete = gr.Button(button, variant="stop", elem_id=elem_id, scale=0)
    message = gr.Markdown(elem_id=f"{elem_id}-message")

    @resetting_errors([KEEP, False])
    def on_delete(chosen, ticked):
        done, listed, unticked = view(chosen, ticked)
        return listed, unticked, done

    return delete.click(on_delete, [target, sure], [target, sure, message])
