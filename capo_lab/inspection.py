"""Per-token log-probs of one pair under a run's adapter at a step (for the inspector's heat map)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from peft import PeftModel

from capo.config import RunConfig
from capo.models import LoadedModel, load_base_model
from capo.scoring import collate, response_logps, split_token_logps, tokenize_pair


@dataclass(frozen=True)
class TokenScores:
    chosen_tokens: list[str]
    chosen_logps: list[float]
    rejected_tokens: list[str]
    rejected_logps: list[float]


@lru_cache(maxsize=2)
def _policy(config_json: str, cache_dir: str, adapter: str | None) -> tuple[torch.nn.Module, LoadedModel]:
    """Base model plus the adapter saved at ``adapter`` (None: the base model, i.e. step 0)."""
    cfg = RunConfig.from_json(config_json)
    loaded = load_base_model(cfg.model, Path(cache_dir), torch.device("cpu"))
    model = PeftModel.from_pretrained(loaded.model, adapter) if adapter else loaded.model
    return model.eval(), loaded


def token_scores(
    cfg: RunConfig, cache_dir: Path, adapter: Path | None, prompt: str, chosen: str, rejected: str
) -> TokenScores:
    model, loaded = _policy(cfg.to_json(), str(cache_dir), str(adapter) if adapter else None)
    data = cfg.data
    pair = tokenize_pair(
        loaded.tokenizer,
        0,
        "",
        prompt,
        chosen,
        rejected,
        data.max_length,
        data.response_separator,
        data.chat_template,
    )
    batch = collate([pair], loaded.tokenizer.pad_token_id)
    with torch.no_grad():
        out = response_logps(model, batch, per_token=True)
    chosen_lp, rejected_lp = split_token_logps(batch, out.token_logps)

    def pieces(ids: tuple[int, ...]) -> list[str]:
        return [loaded.tokenizer.decode([i]) for i in ids]

    return TokenScores(pieces(pair.chosen_ids), chosen_lp, pieces(pair.rejected_ids), rejected_lp)
