from collections import Counter

import pytest

import capo.data.builder as builder
from capo.data.builder import BuildOptions, build_pairs, format_prompt
from capo.data.triples import SPLITS, DataError, MTPETriple, is_tie

LONG = "x" * 51


def triple(source: str = LONG, mt: str = "mt", pe: str = "pe", direction: str = "en-de") -> MTPETriple:
    return MTPETriple(direction=direction, source=source, mt=mt, post_edit=pe, origin="test")


def test_prompt_uses_the_papers_template_with_full_names() -> None:
    assert format_prompt("Hello there.", "en-zh") == (
        "Translate this text from English to Chinese:\nEnglish: Hello there.\nChinese:"
    )


def test_chosen_is_post_edit_and_rejected_is_mt() -> None:
    pairs, _ = build_pairs([triple(mt="raw", pe="edited")], BuildOptions(per_direction=1))
    assert (pairs[0].chosen, pairs[0].rejected) == ("edited", "raw")
    assert pairs[0].prompt.endswith(f"English: {LONG}\nGerman:")


def test_sources_must_be_longer_than_the_minimum() -> None:
    triples = [triple(source="y" * 50), triple(source="z" * 51)]
    pairs, report = build_pairs(triples, BuildOptions(per_direction=5))
    assert [p.source_text for p in pairs] == ["z" * 51]
    assert report.dropped["en-de"] == {"source of 50 characters or fewer": 1}
    pairs, _ = build_pairs(triples, BuildOptions(per_direction=5, min_source_chars=10))
    assert len(pairs) == 2


def test_ties_are_dropped_unless_kept() -> None:
    ties = [triple(source=LONG + "a", mt="same  text", pe="same text"), triple(source=LONG + "b")]
    pairs, report = build_pairs(ties, BuildOptions(per_direction=5))
    assert len(pairs) == 1 and report.dropped["en-de"]["post-edit equals MT"] == 1
    pairs, _ = build_pairs(ties, BuildOptions(per_direction=5, keep_ties=True))
    assert len(pairs) == 2


def test_kept_ties_carry_the_flag_decided_by_is_tie() -> None:
    # "same  text" / "same text\n" collapse to "same text": a tie; "Same text" differs in case: no tie.
    triples = [
        triple(source=LONG + "a", mt="same  text", pe="same text\n"),
        triple(source=LONG + "b", mt="Same text", pe="same text"),
    ]
    assert [is_tie(t.post_edit, t.mt) for t in triples] == [True, False]
    pairs, _ = build_pairs(triples, BuildOptions(per_direction=5, keep_ties=True))
    assert {p.source_text[-1]: p.tie for p in pairs} == {"a": True, "b": False}


def test_the_builder_drops_ties_by_the_one_rule(monkeypatch) -> None:
    # Whatever is_tie says decides the filter: here it calls every pair a tie, so none survives.
    triples = [triple(source=LONG + "a", mt="raw", pe="edited")]
    monkeypatch.setattr(builder, "is_tie", lambda chosen, rejected: True)
    pairs, report = build_pairs(triples, BuildOptions(per_direction=5))
    assert pairs == [] and report.dropped["en-de"]["post-edit equals MT"] == 1


def test_duplicates_are_dropped() -> None:
    pairs, report = build_pairs([triple(), triple(), triple(pe="other")], BuildOptions(per_direction=5))
    assert len(pairs) == 2 and report.dropped["en-de"]["duplicate"] == 1


def test_splits_are_balanced_and_disjoint_by_source() -> None:
    # 12 sources with 3 post-edits each: 36 candidates for 3 x 5 pairs
    triples = [triple(source=f"{LONG} {s}", pe=f"pe{e}") for s in range(12) for e in range(3)]
    pairs, report = build_pairs(triples, BuildOptions(per_direction=5, seed=3))
    assert Counter(p.split for p in pairs) == {s: 5 for s in SPLITS}
    sources = {s: {p.source_text for p in pairs if p.split == s} for s in SPLITS}
    assert not sources["train"] & sources["eval"]
    assert not sources["train"] & sources["validation"]
    assert not sources["eval"] & sources["validation"]
    assert report.shortfalls == []


def test_splits_depend_only_on_the_seed() -> None:
    triples = [triple(source=f"{LONG} {s}") for s in range(30)]
    first, _ = build_pairs(triples, BuildOptions(per_direction=4, seed=1))
    again, _ = build_pairs(list(reversed(triples)), BuildOptions(per_direction=4, seed=1))
    other, _ = build_pairs(triples, BuildOptions(per_direction=4, seed=2))
    assert {(p.split, p.source_text) for p in first} == {(p.split, p.source_text) for p in again}
    assert {(p.split, p.source_text) for p in first} != {(p.split, p.source_text) for p in other}


def test_each_direction_is_balanced_on_its_own() -> None:
    triples = [triple(source=f"{LONG} {s}", direction=d) for d in ("en-de", "en-zh") for s in range(20)]
    pairs, _ = build_pairs(triples, BuildOptions(per_direction=3))
    assert Counter((p.direction, p.split) for p in pairs) == {
        (d, s): 3 for d in ("en-de", "en-zh") for s in SPLITS
    }


def test_shortfall_is_reported_and_strict_refuses() -> None:
    triples = [triple(source=f"{LONG} {s}") for s in range(4)]
    pairs, report = build_pairs(triples, BuildOptions(per_direction=2))
    assert len(pairs) == 4
    assert report.shortfalls == [
        "en-de: asked 2 per split, got train 2, eval 1, validation 1 (4 usable pairs)"
    ]
    with pytest.raises(DataError, match="too few pairs"):
        build_pairs(triples, BuildOptions(per_direction=2, strict=True))


def test_prompt_from_a_pair_file_is_kept_verbatim() -> None:
    t = MTPETriple("en-de", "Custom prompt " + LONG, "bad", "good", "test", prompt="Custom prompt " + LONG)
    pairs, _ = build_pairs([t], BuildOptions(per_direction=1))
    assert pairs[0].prompt == "Custom prompt " + LONG
