"""The errors the CLI, the UI and notebooks show as one line, without a traceback.

``USER_ERRORS`` is the whole family: ``capo.errors.UserError`` (with ``LabError``, ``Problems`` and
the data, config, language and template errors), storage's own (a taken name, a database that cannot
be used) and pydantic's ``ValidationError`` of a record built from a user's values. None of them is a
plain ``ValueError``: anything else a front end meets is a bug (``capo_lab.bugs.report_bug``).
"""

from pydantic import ValidationError

from capo.errors import Problems, UserError
from storage.errors import StorageProblem
from storage.writes import DatasetNameTaken, StudyNameTaken


class LabError(UserError):
    """A user-facing failure of a service: bad input, unknown name, impossible request."""


USER_ERRORS = (UserError, DatasetNameTaken, StudyNameTaken, ValidationError, StorageProblem)

__all__ = ["USER_ERRORS", "LabError", "Problems", "UserError"]
