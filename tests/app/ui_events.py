"""The functions a built app runs for an event of one of its components, found as the browser finds them:
by the component's elem_id and the event's name."""

from __future__ import annotations

import gradio as gr


def component(demo: gr.Blocks, elem_id: str):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def handlers(demo: gr.Blocks, elem_id: str, event: str = "click") -> list:
    """Every BlockFunction run on ``event`` of the component ``elem_id``, in the order they were wired."""
    block = component(demo, elem_id)
    return [f for f in demo.fns.values() if (block._id, event) in [tuple(t) for t in f.targets]]


def run(demo: gr.Blocks, elem_id: str, event: str, *args, index: int = 0) -> tuple[list, list]:
    """(the outputs' components, the values the handler returns) for ``args``."""
    handler = handlers(demo, elem_id, event)[index]
    return handler.outputs, list(handler.fn(*args))


def by_id(outputs: list, values: list) -> dict:
    """The values of the outputs that have an elem_id, by that id."""
    return {getattr(o, "elem_id", None): v for o, v in zip(outputs, values, strict=True) if o.elem_id}


SKIP = gr.skip()
