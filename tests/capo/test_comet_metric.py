"""COMET from a local checkpoint (``capo.comet_metric``), on a tiny random COMET model built here,
and the paired test of its per-sentence scores (``paired_mean_randomization``)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from capo.comet_metric import HOW_TO_GET, INSTALL, CometError, CometScorer
from capo.translation_quality import (
    TranslationRow,
    paired_mean_randomization,
    parse_metrics,
    translation_quality,
)
from capo_lab.errors import LabError
from capo_lab.translations import scoring

SEGMENTS = [
    ("The cat sleeps.", "Die Katze schläft.", "Die Katze schläft."),
    ("A long road.", "Ein langer Weg über die Berge.", "Eine lange Straße."),
    ("Hello.", "Hallo.", "Hallo!"),
]


@pytest.fixture(scope="module")
def scorer(tiny_comet: Path) -> CometScorer:
    return CometScorer(tiny_comet)


def test_each_segment_gets_its_own_score_whatever_its_batch(scorer: CometScorer) -> None:
    together = scorer.scores(SEGMENTS)  # COMET sorts a batch by length and restores the order
    alone = [scorer.scores([segment])[0] for segment in SEGMENTS]
    assert len(together) == 3 and len(set(together)) == 3
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert scorer.scores([]) == []


def test_the_mended_forward_reads_the_encoders_last_state_and_every_layer(scorer: CometScorer) -> None:
    """transformers 5 drops the XLM-R pooler's None from the tuple COMET unpacks (Unbabel/COMET#271)."""
    encoder = scorer.model.encoder
    ids = encoder.tokenizer(["Hallo Welt."], return_tensors="pt")
    out = encoder(ids["input_ids"], ids["attention_mask"])
    with torch.no_grad():
        direct = encoder.model(**ids, output_hidden_states=True)
    assert torch.equal(out["wordemb"], direct.last_hidden_state)
    assert torch.equal(out["sentemb"], direct.last_hidden_state[:, 0, :])
    assert len(out["all_layers"]) == encoder.model.config.num_hidden_layers + 1


def test_comet_scores_in_the_report_are_means_of_the_segments(scorer: CometScorer) -> None:
    rows = [
        TranslationRow("en-de", ref, "MT", mt, base="Irgendwas.", source=src) for src, mt, ref in SEGMENTS
    ]
    (quality, _all) = translation_quality(rows, ("chrf", "comet"), scorer.scores)
    trained = scorer.scores(SEGMENTS)
    base = scorer.scores([(src, "Irgendwas.", ref) for src, _, ref in SEGMENTS])
    assert quality.trained.comet == pytest.approx(np.mean(trained), abs=1e-6)
    assert quality.base.comet == pytest.approx(np.mean(base), abs=1e-6)
    assert quality.p_comet == paired_mean_randomization(base, trained)
    assert quality.trained.bleu is None and quality.p_bleu is None  # not asked for
    assert quality.trained.chrf is not None and quality.trained.chrf_vs_mt is not None


def test_bad_checkpoints_are_one_line_each(tmp_path: Path, tiny_comet: Path) -> None:
    with pytest.raises(CometError, match="not found: a folder with checkpoints/model.ckpt"):
        CometScorer(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    (broken / "hparams.yaml").write_text((tiny_comet / "hparams.yaml").read_text())
    with pytest.raises(CometError, match="does not load: UnpicklingError") as err:
        CometScorer(broken)
    assert "\n" not in str(err.value)
    (broken / "hparams.yaml").write_text("class_identifier: unified_metric\n")
    with pytest.raises(CometError, match="'unified_metric' is not supported"):
        CometScorer(broken)


def test_without_unbabel_comet_the_line_says_how_to_install(
    tiny_comet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "comet", None)  # import comet raises ImportError
    with pytest.raises(CometError) as err:
        CometScorer(tiny_comet)
    assert str(err.value) == INSTALL


def test_metrics_are_checked_once_and_comet_needs_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tiny_comet: Path
) -> None:
    assert parse_metrics("comet, CHRF") == ("chrf", "comet")
    with pytest.raises(Exception, match="unknown metric bleurt: choose from chrf, bleu, ter, comet"):
        parse_metrics("chrf,bleurt")
    monkeypatch.delenv("CAPO_LAB_COMET_CHECKPOINT", raising=False)
    with pytest.raises(LabError) as err:
        scoring("chrf,comet")
    assert str(err.value) == HOW_TO_GET
    ckpt = str(tiny_comet / "checkpoints" / "model.ckpt")
    monkeypatch.setenv("CAPO_LAB_COMET_CHECKPOINT", str(tiny_comet))
    assert scoring("comet").comet_checkpoint == ckpt
    monkeypatch.setenv("CAPO_LAB_COMET_CHECKPOINT", "/models/comet")
    assert scoring("comet", ckpt).comet_checkpoint == ckpt  # the option wins
    with pytest.raises(CometError, match="'/models/comet' not found"):
        scoring("comet")


def test_the_paired_test_of_means_written_out() -> None:
    """Two sentences, differences +0.2 and +0.1: the four sign patterns give mean differences 0.15,
    0.05, −0.05, −0.15; |d| >= 0.15 in half of them, so p → 0.5 as the trials grow."""
    p = paired_mean_randomization([0.5, 0.5], [0.7, 0.6], trials=20_000, seed=1)
    assert p == pytest.approx(0.5, abs=0.01)
    assert paired_mean_randomization([0.3, 0.4], [0.3, 0.4]) == 1.0
    with pytest.raises(ValueError, match="same sentences"):
        paired_mean_randomization([0.1], [0.1, 0.2])


@pytest.mark.parametrize("n", [8, 30, 100])
def test_the_paired_test_of_means_keeps_its_level_and_finds_a_real_difference(n: int) -> None:
    """Seeded simulation: 400 evaluations with no difference (each sentence's two scores exchangeable,
    heavy-tailed and unequal in spread across sentences, as COMET's are); at 0.05 the test rejects at
    most 6 % of them (400 draws put a true 5 % within ±2.2 points). With a shift of one noise sd it
    rejects most of them at 30 sentences and more."""
    rng = np.random.default_rng(7)
    null = shifted = 0
    for study in range(400):
        quality = rng.uniform(0.2, 0.9, n)  # each sentence's difficulty, shared by both systems
        spread = rng.uniform(0.02, 0.2, n)
        base, trained = (quality + spread * rng.standard_t(3, n) for _ in range(2))
        null += paired_mean_randomization(base, trained, trials=400, seed=study) < 0.05
        shifted += paired_mean_randomization(base, trained + spread.mean(), trials=400, seed=study) < 0.05
    assert null / 400 <= 0.06
    if n >= 30:
        assert shifted / 400 >= 0.5
