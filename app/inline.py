"""Inline errors that also reset what a failed action would leave misleading, and the checks of the ids
the named API endpoints take.

``app.common.inline_errors`` keeps every output as it was on a failure; ``resetting_errors`` gives
chosen outputs other values then (a previous result cleared, a stale pick emptied), so that after a
failed action the tab shows only the new error and nothing stale is left to be submitted."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from app.common import inline_errors
from capo_lab.errors import LabError

KEEP = object()  # in ``resetting_errors``' list: this output keeps what it shows


class Later:
    """In ``resetting_errors``' list: the output's value is ``make()``'s, made when the error happens
    (a list read afresh, say)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


LARGEST_ID = 2**63 - 1  # the database's integers


def resetting_errors(on_error: Sequence[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``inline_errors(len(on_error))``, except that on an error each output takes its value in
    ``on_error`` (``KEEP``: keeps what it shows; ``Later``: made then). The action returns its outputs,
    then its status line."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            succeeded: list[bool] = []

            def attempt() -> Any:
                result = func(*args, **kwargs)
                succeeded.append(True)
                return result

            attempt.__name__ = func.__name__  # the name the log gives the action
            result = inline_errors(len(on_error))(attempt)()
            if succeeded:
                return result
            return (*[reset_value(v) for v in on_error], result[-1])

        return wrapper

    return decorate


def reset_value(value: Any) -> Any:
    """An output's value after a failure, as ``resetting_errors`` reads its list."""
    if value is KEEP:
        return gr.skip()
    return value.make() if isinstance(value, Later) else value


def whole_id(what: str, value: Any) -> int:
    """An id given as a whole number (or its digits) from 1 to 2⁶³ − 1; else a LabError naming ``what``."""
    try:
        number = value if isinstance(value, int) else float(str(value).strip())
    except (TypeError, ValueError):
        raise LabError(f"{what} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not float(number).is_integer() or not 1 <= number <= LARGEST_ID:
        raise LabError(f"{what} must be a whole number from 1 to 2^63 - 1, got {value!r}")
    return int(number)


def existing_run(service, value: Any) -> int:
    """The id of a run stored now (runs created after the server started included); else one LabError."""
    run_id = whole_id("run id", value)
    service.run_configs([run_id])  # a LabError "no run N" when there is none
    return run_id
