"""The user-error family: what a user asked for cannot be done as asked.

Front ends (CLI, UI, notebooks through ``capo_lab.service``) show a ``UserError`` as one line and no
traceback. Nothing in the family subclasses ``ValueError``: a ``ValueError`` (or anything else) that
escapes to a front end is a bug, logged once with its traceback and shown as "internal error".
"""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """Bad input, an unknown name, an impossible request; the message says which and what to do."""


class Problems(UserError):
    """Every invalid field of one request at once, each as (field, what is wrong with it); a field of
    "" is a problem of the request as a whole."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = [(str(field), str(message)) for field, message in problems]
        super().__init__(
            "; ".join(f"{field}: {message}" if field else message for field, message in self.problems)
        )

    def __reduce__(self) -> tuple[type[Problems], tuple[list[tuple[str, str]]]]:  # pickles (job queue)
        return (type(self), (self.problems,))
