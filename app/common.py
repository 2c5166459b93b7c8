"""Small helpers shared by the tabs: errors to the page, tables, choices."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from capo_lab.service import USER_ERRORS


def shows_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Known user errors become a red message on the page (gr.Error), nothing else changes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as err:
            raise gr.Error(str(err.errors()[0]["msg"])) from None
        except USER_ERRORS as err:
            raise gr.Error(" ".join(str(err).split())) from None

    return wrapper


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows or columns else pd.DataFrame()


def run_choices(service) -> list[tuple[str, int]]:
    return [(f"#{r['id']} {r['name']} · {r['objective']} · {r['status']}", r["id"]) for r in service.runs()]


def dataset_choices(service) -> list[str]:
    return [d["name"] for d in service.datasets()]
