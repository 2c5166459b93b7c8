"""Plain dataclasses that queries return, so callers never hold ORM objects or sessions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    created_at: datetime
    pair_count: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # direction → split → n
    sources: list[Any] = field(default_factory=list)
    build_options: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def directions(self) -> list[str]:
        return sorted(self.counts)


@dataclass(frozen=True)
class PairRecord:
    pair_id: int
    dataset_id: int
    split: str
    direction: str
    position: int
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    hter: float | None
    origin: str

    @property
    def source(self) -> str:
        return self.source_text

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["source"] = row.pop("source_text")
        return row
