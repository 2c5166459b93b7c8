"""Summed response log-probs for chosen and rejected responses in one forward pass.

Chosen and rejected sequences of a batch are concatenated along the batch
dimension and run through the decoder once. Only response tokens are scored:
their hidden states are gathered and projected to the vocabulary in chunks of
``chunk_tokens`` tokens (by default ``head_chunk_tokens``: a budget per device;
``capo/head_logps.py``: a frozen head's gradient is
computed in the same pass, a trained head is checkpointed), so the
batch × sequence × vocabulary logits tensor is never held (262k-token
vocabularies make it gigabytes). log π(y|x) = Σ_t log softmax(W h_{t−1})[y_t],
in nats, computed in float32 (float64 for a float64 model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from capo.data.triples import is_tie
from capo.head_logps import head_chunk_tokens, head_token_logps
from capo.templates import render_pair


@dataclass(frozen=True)
class TokenizedPair:
    pair_id: int
    direction: str
    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]
    truncated: bool = False
    tie: bool = False  # the pair's texts are equal (``capo.data.triples.is_tie``), copied from the pair

    @property
    def truncated_identical(self) -> bool:
        """Different texts, the same response token ids (in practice: the same first tokens, the
        rest cut by ``max_length``): not a tie, yet the model cannot tell chosen from rejected, so
        lw − ll is float noise."""
        return self.chosen_ids == self.rejected_ids and not self.tie

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


@dataclass(frozen=True)
class SequenceBatch:
    """2B right-padded sequences (chosen first, then rejected) and where their responses are."""

    input_ids: Tensor  # [2B, T]
    attention_mask: Tensor  # [2B, T]
    target_rows: Tensor  # [K] sequence of each response token
    target_cols: Tensor  # [K] position of each response token (≥ 1)
    n_tokens: Tensor  # [2B] response tokens per sequence

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(
            *(
                t.to(device)
                for t in (
                    self.input_ids,
                    self.attention_mask,
                    self.target_rows,
                    self.target_cols,
                    self.n_tokens,
                )
            )
        )


@dataclass(frozen=True)
class ResponseLogps:
    chosen: Tensor  # [B]
    rejected: Tensor  # [B]
    chosen_tokens: Tensor  # [B]
    rejected_tokens: Tensor  # [B]
    token_logps: Tensor | None = None  # [K], aligned with batch.target_rows, when asked for


def tokenize_pair(
    tokenizer,
    pair_id: int,
    direction: str,
    prompt: str,
    chosen: str,
    rejected: str,
    max_length: int,
    separator: str = " ",
    chat_template: str = "none",
    tie: bool | None = None,
) -> TokenizedPair:
    """The pair rendered by ``capo.templates.render_pair`` (BOS once; responses end with EOS).

    When prompt + longest response exceeds ``max_length``, the prompt keeps its last
    ``max_length // 2`` tokens and the responses are cut to fit. ``tie`` is the pair's stored
    tie; None decides it from ``chosen`` and ``rejected`` with the same rule (``is_tie``), never
    from the token ids.
    """
    rendered = render_pair(tokenizer, prompt, chosen, rejected, chat_template, separator)
    prompt_ids = list(rendered.prompt.ids)
    responses = [list(rendered.chosen.ids), list(rendered.rejected.ids)]
    longest = max(len(r) for r in responses)
    truncated = len(prompt_ids) + longest > max_length
    if truncated:
        prompt_ids = prompt_ids[-max(1, min(len(prompt_ids), max_length // 2)) :]
        room = max(1, max_length - len(prompt_ids))
        responses = [r[:room] for r in responses]
    return TokenizedPair(
        pair_id,
        direction,
        tuple(prompt_ids),
        tuple(responses[0]),
        tuple(responses[1]),
        truncated,
        is_tie(chosen, rejected) if tie is None else tie,
    )


def collate(pairs: Sequence[TokenizedPair], pad_id: int) -> SequenceBatch:
    """Right-pad chosen sequences then rejected sequences into one [2B, T] batch."""
    sequences = [(p.prompt_ids, p.chosen_ids) for p in pairs] + [
        (p.prompt_ids, p.rejected_ids) for p in pairs
    ]
    width = max(len(a) + len(b) for a, b in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    rows, cols, counts = [], [], []
    for i, (prompt, response) in enumerate(sequences):
        ids = prompt + response
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
        rows.extend([i] * len(response))
        cols.extend(range(len(prompt), len(ids)))
        counts.append(len(response))
    return SequenceBatch(
        input_ids, attention_mask, torch.tensor(rows), torch.tensor(cols), torch.tensor(counts)
    )


def _final_hidden(model: nn.Module, batch: SequenceBatch) -> Tensor:
    decoder = model.get_decoder()
    out = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    return out.last_hidden_state


def _logit_softcap(model: nn.Module) -> float | None:
    config = getattr(model, "config", None)
    return getattr(config, "final_logit_softcapping", None) if config is not None else None


def token_logps_from_hidden(
    hidden: Tensor,
    targets: Tensor,
    head: nn.Module,
    softcap: float | None = None,
    chunk_tokens: int | None = None,
) -> Tensor:
    """log softmax(head(hidden))[targets] per token, chunk by chunk; hidden [K, H], targets [K]; chunks of
    ``chunk_tokens``, by default the device's budget (``head_chunk_tokens``)."""
    chunk = chunk_tokens or head_chunk_tokens(head.weight.shape[0], hidden.device.type)
    return head_token_logps(hidden, targets, head, softcap, chunk)


def sequence_logps(
    model: nn.Module,
    states: Tensor,
    targets: Tensor,
    sequence: Tensor,
    n_tokens: Tensor,
    chunk_tokens: int | None = None,
    per_token: bool = False,
) -> ResponseLogps:
    """Response log-probs from the hidden state before each response token, summed per sequence.

    ``states`` [K, H] holds h_{t−1} for target y_t (``targets`` [K]); ``sequence`` [K] names the
    sequence of each token, 0 … 2B−1 with the B chosen sequences first; ``n_tokens`` [2B].
    log π(y|x) for sequence s = Σ_{k: sequence[k] = s} log softmax(W states_k)[targets_k].
    Shared by the padded scorer below and the packed one (``capo/packing.py``).
    """
    token_logps = token_logps_from_hidden(
        states, targets, model.get_output_embeddings(), _logit_softcap(model), chunk_tokens
    )
    sums = torch.zeros(n_tokens.shape[0], dtype=token_logps.dtype, device=token_logps.device)
    sums = sums.index_add(0, sequence, token_logps)
    b = n_tokens.shape[0] // 2
    return ResponseLogps(
        chosen=sums[:b],
        rejected=sums[b:],
        chosen_tokens=n_tokens[:b],
        rejected_tokens=n_tokens[b:],
        token_logps=token_logps.detach() if per_token else None,
    )


def response_logps(
    model: nn.Module, batch: SequenceBatch, chunk_tokens: int | None = None, per_token: bool = False
) -> ResponseLogps:
    """Summed response log-probs of the batch's chosen and rejected sequences (one forward)."""
    hidden = _final_hidden(model, batch)
    states = hidden[batch.target_rows, batch.target_cols - 1]
    targets = batch.input_ids[batch.target_rows, batch.target_cols]
    return sequence_logps(model, states, targets, batch.target_rows, batch.n_tokens, chunk_tokens, per_token)


def split_by_sequence(sequence: Tensor, n_sequences: int, token_logps: Tensor) -> list[list[float]]:
    """Per-sequence lists of per-token log-probs: token k goes to list ``sequence[k]``, in order."""
    out: list[list[float]] = [[] for _ in range(n_sequences)]
    for row, value in zip(sequence.tolist(), token_logps.tolist(), strict=True):
        out[row].append(value)
    return out


def split_token_logps(batch: SequenceBatch, token_logps: Tensor) -> list[list[float]]:
    """Per-sequence lists of per-token log-probs, in batch order (chosen …, rejected …)."""
    return split_by_sequence(batch.target_rows, batch.input_ids.shape[0], token_logps)
