"""Small helpers shared by the tabs: errors to the page, tables, choices."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from capo_lab.service import USER_ERRORS

# Characters Markdown can read as markup; the HTML-significant ones (& < > " ') are HTML-escaped instead.
MARKDOWN_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def markdown_text(value: object) -> str:
    """``value`` shown literally inside gr.Markdown: one line, markup backslash-escaped, HTML escaped."""
    line = " ".join(str(value).split())
    return html.escape(MARKDOWN_MARKUP.sub(r"\\\1", line))


def shows_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Known user errors become a red message on the page (gr.Error), nothing else changes.

    Gradio renders an error's message as HTML, and the message can quote a user's input, so it is escaped.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as err:
            raise gr.Error(html.escape(str(err.errors()[0]["msg"]))) from None
        except USER_ERRORS as err:
            raise gr.Error(html.escape(" ".join(str(err).split()))) from None

    return wrapper


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows or columns else pd.DataFrame()


def run_choices(service) -> list[tuple[str, int]]:
    return [
        (f"#{r.id} {r.name} · {r.config['objective']['name']} · {r.status}", r.id) for r in service.runs()
    ]


def dataset_choices(service) -> list[str]:
    return [d.name for d in service.datasets()]
