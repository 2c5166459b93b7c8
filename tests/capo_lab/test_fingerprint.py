"""Base scores are reused across runs by fingerprint; a model setting added later at its default must
not change the fingerprint, or every run stored before it would score its base again."""

import hashlib
import json

from capo.config import RunConfig
from capo_lab.runs import base_fingerprint


def old_fingerprint(cfg: RunConfig, dataset_id: int) -> str:
    """The fingerprint as computed before ``model.attn_implementation`` existed."""
    model = cfg.model.model_dump(mode="json")
    model.pop("attn_implementation")
    key = {
        "dataset": dataset_id, "model": model, "bf16": cfg.train.bf16, "template": cfg.data.chat_template,
        "separator": cfg.data.response_separator, "max_length": cfg.data.max_length,
        "eval_batch_size": cfg.train.eval_batch_size or cfg.train.batch_size, "scoring": cfg.train.scoring,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def test_the_default_attention_kernel_keeps_older_fingerprints() -> None:
    cfg = RunConfig()
    assert cfg.model.attn_implementation == "auto"
    assert base_fingerprint(cfg, 3) == old_fingerprint(cfg, 3)


def test_a_chosen_attention_kernel_is_a_different_base() -> None:
    cfg = RunConfig()
    eager = cfg.model_copy(update={"model": cfg.model.model_copy(update={"attn_implementation": "eager"})})
    assert base_fingerprint(eager, 3) != base_fingerprint(cfg, 3)
