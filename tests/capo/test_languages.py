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


def test_overlapping_pairs_are_all_candidates_and_two_letter_pairs_win() -> None:
    # "nul" is a known ISO 639-3 code: the old first-match rule read nul-en-de.jsonl as nul-en
    assert make_direction("nul", "en") == "nul-en"
    assert find_direction("nul-en-de.jsonl") == "en-de"
    assert find_direction("wmt20-en-de.train.jsonl") == "en-de"


def test_a_three_letter_pair_is_used_only_when_no_two_letter_pair_is_named() -> None:
    assert find_direction("eng-deu.tsv") == "en-de"
    assert find_direction("nul-eng.tsv") == "nul-en"


def test_a_name_stating_two_directions_states_none() -> None:
    assert find_direction("en-de-fr.jsonl") is None
    assert find_direction("en-de_and_en-zh.jsonl") is None
    assert find_direction("en-de.en-de.jsonl") == "en-de"
