"""The errors the CLI and UI show as one line, without a traceback."""

from pydantic import ValidationError

from capo.data.triples import DataError
from capo.languages import UnknownLanguageError
from capo.templates import TemplateError
from storage.errors import StorageProblem
from storage.writes import DatasetNameTaken, StudyNameTaken


class LabError(Exception):
    """A user-facing failure: bad input, unknown name, impossible request."""


USER_ERRORS = (
    LabError,
    DataError,
    DatasetNameTaken,
    StudyNameTaken,
    UnknownLanguageError,
    TemplateError,
    ValidationError,
    StorageProblem,
)
