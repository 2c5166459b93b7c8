import pytest

from capo.languages import (
    UnknownLanguageError,
    find_direction,
    language_name,
    make_direction,
    parse_direction,
)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("en", "English"),
        ("de", "German"),
        ("zh", "Chinese"),
        ("ara", "Arabic"),
        ("nld", "Dutch"),
        ("ukr", "Ukrainian"),
        ("vie", "Vietnamese"),
        ("tur", "Turkish"),
        ("ita", "Italian"),
    ],
)
def test_language_names_are_the_papers_plain_names(code: str, name: str) -> None:
    assert language_name(code) == name


def test_directions_normalise_three_letter_codes() -> None:
    assert make_direction("eng", "ara") == "en-ar"
    assert parse_direction("EN-DE") == ("en", "de")


def test_direction_is_found_inside_file_names() -> None:
    assert find_direction("en-de-train.tar.gz") == "en-de"
    assert find_direction("en-zh-test20") == "en-zh"
    assert find_direction("train.src") is None


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(UnknownLanguageError):
        parse_direction("xx-qq")
    with pytest.raises(UnknownLanguageError):
        parse_direction("english-german")
