"""Small helpers shared by the tabs: errors to the page, tables, choices."""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from capo_lab.bugs import report_bug
from capo_lab.errors import USER_ERRORS, Problems

# Characters Markdown can read as markup; the HTML-significant ones (& < > " ') are HTML-escaped instead.
MARKDOWN_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")
log = logging.getLogger("capo_lab.ui")


def markdown_text(value: object) -> str:
    """``value`` shown literally inside gr.Markdown: one line, markup backslash-escaped, HTML escaped."""
    line = " ".join(str(value).split())
    return html.escape(MARKDOWN_MARKUP.sub(r"\\\1", line))


FormProblems = Problems  # several invalid fields of a form at once, each as (its label, what is wrong)


def user_error_text(err: BaseException) -> str:
    """A known user error as one line: pydantic's first message, or the error's own words."""
    if isinstance(err, ValidationError):
        return str(err.errors()[0]["msg"])
    text = err.message if isinstance(err, gr.Error) else err  # str(gr.Error) quotes its message
    return " ".join(str(text).split())


def log_user_error(action: str, message: str) -> None:
    """One line in the server log for a user's mistake (no traceback: nothing is wrong with the lab)."""
    log.warning("user error in %s: %s", action, message)


def bug_text(action: str, err: Exception) -> str:
    """A bug inside ``action``: its traceback logged once (``capo_lab.bugs``); one line for the page."""
    return report_bug(f"the UI's {action}", err)


def error_markdown(err: BaseException) -> str:
    """The status line of a failed action, escaped: one line, or one line per field of a form."""
    if isinstance(err, FormProblems):
        lines = [
            f"- **{markdown_text(label)}**: {markdown_text(msg)}" if label else f"- {markdown_text(msg)}"
            for label, msg in err.problems
        ]
        return "⚠️ Nothing was done; please fix:\n\n" + "\n".join(lines)
    return f"⚠️ {markdown_text(user_error_text(err))}"


def inline_errors(outputs: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For an action whose outputs are ``outputs`` components, then a status line (gr.Markdown).

    On a user error (``USER_ERRORS``, ``Problems`` among them) the components keep what they show
    (gr.skip()), the status line says what went wrong until the next action replaces it, and the log
    gets one line.
    A bug leaves them too, and the status line says an internal error happened and where its
    traceback is. The action itself returns its ``outputs`` values and its status line (empty to
    clear it)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except USER_ERRORS as err:
                log_user_error(func.__name__, user_error_text(err))
                return (*[gr.skip()] * outputs, error_markdown(err))
            except Exception as err:  # not the user's mistake: a bug, logged once with its traceback
                return (*[gr.skip()] * outputs, f"⚠️ {markdown_text(bug_text(func.__name__, err))}")

        return wrapper

    return decorate


def shows_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """User errors become a red message on the page (gr.Error) and one line in the log; a bug, a red
    "internal error" line and its traceback in the lab's log, once.

    Gradio renders an error's message as HTML, and the message can quote a user's input, so it is
    escaped. Gradio marks every output of the action as failed: actions whose outputs hold content
    the user still needs use ``inline_errors`` instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as err:
            message = user_error_text(err)
            log_user_error(func.__name__, message)
            raise gr.Error(html.escape(message), print_exception=False) from None
        except Exception as err:  # a bug: logged once with its traceback, one line on the page
            raise gr.Error(html.escape(bug_text(func.__name__, err)), print_exception=False) from None

    return wrapper


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows or columns else pd.DataFrame()


def run_choices(service) -> list[tuple[str, int]]:
    return [
        (f"#{r.id} {r.name} · {r.config['objective']['name']} · {r.status}", r.id) for r in service.runs()
    ]


def dataset_choices(service) -> list[str]:
    return [d.name for d in service.datasets()]
