"""The user-error family: every member is one a front end shows in a line, none is a ValueError (so a
ValueError from a bug is never taken for a user's mistake), and each is caught as a user error."""

import pytest

from capo.config import ConfigError
from capo.data.triples import DataError
from capo.distributed import NotEnoughGpus
from capo.errors import Problems, UserError
from capo.languages import UnknownLanguageError
from capo.models import ModelAccessError
from capo.templates import TemplateError
from capo_lab.errors import USER_ERRORS, LabError
from storage.errors import StorageProblem
from storage.writes import DatasetNameTaken, StudyNameTaken

MEMBERS = [
    LabError("x"),
    Problems([("train.lr", "must be finite")]),
    ConfigError("x"),
    DataError("f.jsonl", "x"),
    UnknownLanguageError("x"),
    TemplateError("x"),
    DatasetNameTaken("d"),
    StudyNameTaken("s"),
    StorageProblem("lab.db", "damaged", "restore a backup"),
    ModelAccessError("meta-llama/x: the hub refused it (401); set HF_TOKEN"),
    NotEnoughGpus("rank 1 has no GPU of its own"),
]


@pytest.mark.parametrize("err", MEMBERS, ids=lambda e: type(e).__name__)
def test_each_user_error_is_in_the_family_and_none_is_a_value_error(err: Exception) -> None:
    assert isinstance(err, USER_ERRORS)
    assert not isinstance(err, ValueError)


def test_a_value_error_is_not_a_user_error() -> None:
    assert not isinstance(ValueError("a bug"), USER_ERRORS) and ValueError not in USER_ERRORS


def test_problems_lists_every_field_in_one_line() -> None:
    err = Problems([("optim.lr", "must be finite"), ("", "a study needs a name")])
    assert isinstance(err, UserError)
    assert str(err) == "optim.lr: must be finite; a study needs a name"
    assert err.problems == [("optim.lr", "must be finite"), ("", "a study needs a name")]
