"""What the trainer feeds the model for each pair: texts and token ids under a chat template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from capo.templates import Segment, check_template, render_pair
from capo_lab.database import Database
from capo_lab.datasets import dataset_pairs
from capo_lab.errors import LabError


@dataclass(frozen=True)
class RenderedPairRecord:
    pair_id: int
    direction: str
    split: str
    chat_template: str
    prompt: Segment
    chosen: Segment
    rejected: Segment

    def as_dict(self) -> dict[str, object]:
        def part(segment: Segment) -> dict[str, object]:
            return {"text": segment.text, "token_ids": list(segment.ids), "tokens": len(segment.ids)}

        head = {k: getattr(self, k) for k in ("pair_id", "direction", "split", "chat_template")}
        return {
            **head,
            "prompt": part(self.prompt),
            "chosen": part(self.chosen),
            "rejected": part(self.rejected),
        }


def render_dataset_pairs(
    db: Database,
    cache_dir: Path,
    dataset: str,
    model: str,
    chat_template: str = "none",
    split: str | None = None,
    direction: str | None = None,
    limit: int | None = None,
    pair_id: int | None = None,
    separator: str = " ",
) -> list[RenderedPairRecord]:
    """Render the dataset's pairs (filtered) with ``model``'s tokenizer, as ``capo.train`` does."""
    from capo.models import load_tokenizer

    pairs = dataset_pairs(db, dataset, split=split, direction=direction)
    if pair_id is not None:
        pairs = [p for p in pairs if p.pair_id == pair_id]
        if not pairs:
            raise LabError(f"dataset {dataset!r} has no pair {pair_id} (with these filters)")
    tokenizer = load_tokenizer(model, cache_dir)
    check_template(tokenizer, chat_template, model)
    records = []
    for p in pairs[:limit] if limit else pairs:
        r = render_pair(tokenizer, p.prompt, p.chosen, p.rejected, chat_template, separator)
        records.append(
            RenderedPairRecord(p.pair_id, p.direction, p.split, chat_template, r.prompt, r.chosen, r.rejected)
        )
    return records
