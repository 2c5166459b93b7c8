"""M-IFEval strict and loose scores against responses checked by hand (the reasoning is in comments)."""

from __future__ import annotations

import pytest

from capo.benchmarks.ifeval import check_instruction, loose_variants, score_item, summarize
from capo.benchmarks.ifeval_checks import LOCAL_CHECKS
from capo.benchmarks.items import BenchmarkItem


def item(key: str, language: str, prompt: str, *pairs: tuple[str, dict]) -> BenchmarkItem:
    ids, kwargs = zip(*pairs, strict=True)
    return BenchmarkItem("m-ifeval", language, key, (prompt,), instructions=ids, kwargs=kwargs)


NO_COMMA = ("en:punctuation:no_comma", {})
TITLE = ("en:detectable_format:title", {})
END = ("en:startend:end_checker", {"end_phrase": "Any other questions?"})
WORDS = ("en:length_constraints:number_words", {"relation": "less than", "num_words": 5})


def test_strict_and_loose_on_hand_checked_english_responses() -> None:
    items = [
        item("1", "en", "Write a title, no commas.", TITLE, NO_COMMA),
        item("2", "en", "End with 'Any other questions?', under 5 words.", END, WORDS),
        item("3", "en", "Use no commas.", NO_COMMA),
    ]
    responses = {
        # title <<…>> present, no comma anywhere: both pass, strict and loose
        "1": "<<Rain>>\nIt rained all day",
        # strict: ends with "(end)", not the phrase -> fail; words Sure thing Any other questions end
        # = 6, not < 5 -> fail. Loose: without the last line it ends with the phrase -> pass; without
        # first and last lines "Any other questions?" is 3 words < 5 -> pass.
        "2": "Sure thing\nAny other questions?\n(end)",
        # a comma on the last line: strict fails; loose drops the last line and passes
        "3": "no commas here\nwell, almost",
    }
    results = [score_item(i, responses[i.item_id]) for i in items]
    assert [[r.strict for r in res.instructions] for res in results] == [
        [True, True],
        [False, False],
        [False],
    ]
    assert [[r.loose for r in res.instructions] for res in results] == [[True, True], [True, True], [True]]
    scores = summarize(results, "en")
    # prompts: strict 1 of 3 (only item 1), loose 3 of 3; instructions: strict 2 of 5, loose 5 of 5
    assert (scores.prompt_strict, scores.prompt_loose) == (pytest.approx(1 / 3), 1.0)
    assert (scores.instruction_strict, scores.instruction_loose) == (pytest.approx(2 / 5), 1.0)
    assert (scores.prompts_scored, scores.instructions_scored, scores.left_out) == (3, 5, ())


def test_loose_variants_are_ifevals_eight() -> None:
    assert loose_variants("a\n*b*\nc") == [
        "a\n*b*\nc",
        "*b*\nc",
        "a\n*b*",
        "*b*",
        "a\nb\nc",
        "b\nc",
        "a\nb",
        "b",
    ]


def test_localised_relations_reach_lm_evals_checks() -> None:
    # "al menos 3 palabras": 4 words pass; "como máximo 3": 3 words pass (≤), 4 fail
    at_least = {"relation": "al menos", "num_words": 3}
    at_most = {"relation": "como máximo", "num_words": 3}
    assert check_instruction("es:length_constraints:number_words", at_least, "uno dos tres cuatro", "").strict
    assert check_instruction("es:length_constraints:number_words", at_most, "uno dos tres", "").strict
    assert not check_instruction(
        "es:length_constraints:number_words", at_most, "uno dos tres cuatro", ""
    ).strict
    # M-IFEval's "relation: al menos" on placeholders is IFEval's own ≥ rule: 2 placeholders ≥ 2
    placeholders = {"num_placeholders": 2, "relation": "al menos"}
    assert check_instruction(
        "es:detectable_content:number_placeholders", placeholders, "[a] y [b]", ""
    ).strict
    # "moins de 2" occurrences of "chat": one occurrence passes
    frequency = {"keyword": "chat", "frequency": 2, "relation": "moins de"}
    assert check_instruction("fr:keywords:frequency", frequency, "Le chat dort.", "").strict


def test_unsupported_instructions_are_left_out_not_guessed() -> None:
    nominal = ("ja:detectable_format:nominal_ending", {"count": 2})
    quote = ("ja:startend:quotation", {})
    results = [score_item(item("9", "ja", "…", nominal, quote), "「こんにちは」")]
    assert [r.status for r in results[0].instructions] == ["unsupported", "checked"]
    scores = summarize(results, "ja")
    # the prompt is incomplete: out of prompt-level; the quotation check alone makes instruction-level 1/1
    assert (scores.prompts, scores.prompts_scored, scores.prompt_strict) == (1, 0, None)
    assert (scores.instructions, scores.instructions_scored, scores.instruction_strict) == (2, 1, 1.0)
    assert scores.left_out == ("ja:detectable_format:nominal_ending",)


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "passes", "fails"),
    [
        ("es:punctuation:question_marks", {}, "¿Vienes mañana?", "Vienes mañana?"),
        ("es:punctuation:exclamation_marks", {}, "¡Qué bien!", "Qué bien!"),
        ("es:special_character:enie", {"let_frequency": 2}, "El niño y la niña.", "El niño juega."),
        ("es:special_character:dieresis", {"let_frequency": 1}, "La cigüeña vuela.", "La cigueña vuela."),
        (
            "es:special_character:tildes",
            {"relation": "al menos", "num_words": 2},
            "Mamá comió.",
            "Mamá come.",
        ),
        (
            "es:change_case:spanish_capital",
            {},
            "EL CAFÉ DE LA MAÑANA ESTÁ MUY CALIENTE Y DELICIOSO",
            "El café está caliente",
        ),
        (
            "es:change_case:spanish_lowercase",
            {},
            "el café de la mañana está muy caliente y delicioso",
            "El café está caliente hoy",
        ),
        ("es:detectable_format:constrained_response", {}, "Quizás.", "Tal vez."),
        (
            "es:length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "En mi opinión"},
            "Hola.\n\nEn mi opinión, sí.",
            "Hola.\n\nEn tu opinión, sí.",
        ),
        ("fr:startend:quotation", {}, "« Bonjour »", "Bonjour"),
        (
            "es:startend:end_checker",
            {"end_phrase": "Un saludo"},
            "Gracias. Un saludo.",
            "Un saludo, gracias.",
        ),
        ("fr:detectable_format:title", {}, "## Mon titre ##\nTexte", "<<Mon titre>>\nTexte"),
        ("ja:detectable_format:title", {}, "『題名』\n本文", "<<題名>>\n本文"),
        (
            "ja:detectable_format:number_highlighted_sections",
            {"num_highlights": 2},
            "《一》と《二》",
            "《一》と*二*",
        ),
        (
            "ja:detectable_format:number_bullet_lists",
            {"num_bullets": 3},
            "・一\n* 二\n- 三",
            "・一\n** 二\n- 三",
        ),
        # "!" is asked for as a "letter"; IFEval's code would swap it for a random letter
        (
            "en:keywords:letter_frequency",
            {"letter": "!", "let_relation": "at least", "let_frequency": 2},
            "Hi! Yo!",
            "Hi!",
        ),
        (
            "fr:keywords:letter_frequency",
            {"letter": "b", "let_relation": "moins de", "let_frequency": 2},
            "Bon",
            "Bob",
        ),
        ("fr:special_character:ethel_or_cedilla", {"forbidden_char": "ç"}, "Une lecon.", "Une leçon."),
        ("fr:detectable_content:informal_address", {}, "Est-ce que tu viens ?", "Est-ce que vous venez ?"),
        ("fr:special_character:no_accents", {}, "Le chat dort", "Le chat a mangé"),
        (
            "fr:special_character:accents",
            {"word_to_accentuate": {"lecon": "leçon"}},
            "Une leçon.",
            "Une lecon.",
        ),
        ("fr:detectable_content:no_digits", {}, "Trois chats.", "3 chats."),
        (
            "fr:change_case:french_capital",
            {},
            "LE CHAT DORT TRANQUILLEMENT DANS LA MAISON AVEC SES AMIS",
            "Le chat dort",
        ),
        (
            "fr:change_case:french_lowercase",
            {},
            "le chat dort tranquillement dans la maison avec ses amis",
            "Le chat dort",
        ),
        ("fr:detectable_format:constrained_response", {}, "Peut-être.", "Je ne sais pas."),
        ("ja:letters:hiragana_only", {}, "こんにちは、げんき？", "こんにちは、元気？"),
        ("ja:letters:katakana_only", {}, "コンニチハ・ゲンキ", "コンニチハ元気"),
        ("ja:letters:no_hiragana", {}, "元気デス。", "元気です。"),
        ("ja:letters:no_katakana", {}, "げんきです。", "ゲンキです。"),
        ("ja:letters:kanji", {"relation": "未満", "kanji_limit": 2}, "東です。", "東京です。"),
        ("ja:letters:kansuuji", {}, "三人です。", "3人です。"),
        ("ja:letters:furigana", {}, "東京（とうきょう）です。", "東京（とうきょう）と大阪です。"),
        ("ja:punctuation:no_comma", {}, "はい。", "はい、そうです。"),
        ("ja:punctuation:no_period", {}, "はい", "はい。"),
        ("ja:startend:quotation", {}, "「はい」", "はい"),
        ("ja:startend:sentence_unified_end", {"ending": "です"}, "雨です。寒いです。", "雨です。寒い。"),
        ("ja:length_constraints:number_letters", {"relation": "以上", "num_letters": 3}, "あいう", "あい"),
        ("ja:keywords:forbidden_words", {"forbidden_words": ["バランス"]}, "調和が大事", "バランスが大事"),
        (
            "ja:keywords:letter_frequency",
            {"letter": "か", "let_relation": "以上", "let_frequency": 2},
            "かカ",
            "か",
        ),
        ("ja:detectable_format:number_numbered_lists", {"num_items": 2}, "1. 一\n2. 二", "1. 一"),
        (
            "ja:detectable_format:multiple_sections",
            {"section_spliter": "章", "num_sections": 2},
            "第1章 a 第2章 b",
            "第1章 a",
        ),
        ("ja:detectable_format:constrained_response", {}, "はい、そうです。", "はい"),
    ],
)
def test_each_language_specific_check(instruction_id: str, kwargs: dict, passes: str, fails: str) -> None:
    assert instruction_id in LOCAL_CHECKS
    assert check_instruction(instruction_id, kwargs, passes, "").strict is True
    assert check_instruction(instruction_id, kwargs, fails, "").strict is False


def test_a_kwarg_the_check_does_not_know_is_unsupported() -> None:
    # lm-eval's response-language table has no "zh"; M-IFEval's French set asks for Chinese once
    result = check_instruction("fr:language:response_language", {"language": "zh"}, "你好，世界。", "")
    assert (result.status, result.strict, result.note) == (
        "unsupported",
        None,
        "the check does not know 'zh'",
    )


def test_a_kwarg_the_check_does_not_take_is_unsupported() -> None:
    # IFEval's placeholder rule is "at least N": an "at least" relation is that rule, "less than" is not
    kwargs = {"num_placeholders": 2, "relation": "moins de"}
    result = check_instruction("fr:detectable_content:number_placeholders", kwargs, "[a]", "")
    assert (result.status, result.note) == ("unsupported", "the check does not know 'relation'")


def test_a_check_that_cannot_run_here_is_unavailable_not_failed() -> None:
    """lm-eval counts sentences with nltk's English punkt model, which is data, not a package."""
    result = check_instruction(
        "en:length_constraints:number_sentences", {"relation": "at least", "num_sentences": 1}, "Hi.", ""
    )
    try:
        import nltk

        nltk.data.find("tokenizers/punkt/english.pickle")
        assert (result.status, result.strict) == ("checked", True)
    except LookupError:
        assert result.status == "unavailable" and result.strict is None and "punkt" in result.note
