"""CAPO Lab's preference objectives as a TRL trainer (the optional extra ``pip install 'capo-lab[trl]'``).

``CapoTrainer`` is TRL's ``DPOTrainer`` with ``compute_loss`` replaced, the route TRL documents for a new
objective (huggingface/trl PR #6918, "Change the training objective"). TRL keeps everything else: its
dataset preparation (tokenising prompt + response, appending EOS), collator, PEFT wrapping, optimizer,
logging and checkpoints. The loss is ``capo.objectives.compute_objective``, the function the lab's own
trainer calls (capo/train.py), so CAPO, SimPO, DPO+NLL and DPO are each defined once
(capo/objective_defs.py); TRL has no CAPO and no DPO+NLL, and its SimPO lives in CPOTrainer.

What the objective is fed, as the lab's trainer feeds it (capo/scoring.py):

- lw, ll: each response's log-probs **summed** over its tokens (EOS included), never averaged. SimPO and
  DPO+NLL divide by the token counts themselves (|y| = the response tokens scored). TRL's ``ld_alpha``
  (length-desensitised sums) is refused, like every other DPOTrainer loss option this loss would ignore.
- The per-token log-probs come from TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``, the
  model's own forward, so DDP and DeepSpeed see a normal call). It computes the log-softmax in float32
  whatever the model's dtype; the tokens are then summed in float32 (float64 for a float64 model), as the
  lab sums them. In float64 the sums differ from the lab's float64 scorer by that float32 rounding: a few
  1e-6 nats over 40 to 64 tokens, at most 4e-7 on a loss (tests/capo/test_trl.py).
- rw, rl (DPO and DPO+NLL only): the reference as TRL obtains it: with a LoRA ``peft_config``, the same
  model with its adapters disabled (what the lab's trainer caches as base scores); otherwise ``ref_model``
  (TRL loads a copy of the policy when none is given); or TRL's ``precompute_ref_log_probs``. CAPO and
  SimPO are reference-free: no reference forward pass runs, and ``ref_model``, ``precompute_ref_log_probs``
  and ``sync_ref_model`` are refused (TRL would load or score a reference for nothing). Without a
  ``peft_config`` TRL's own ``__init__`` still loads a reference copy, which a reference-free objective
  never calls: use LoRA (``peft_config``), as the lab does.
- β is ``DPOConfig.beta``, as in every TRL trainer; the other parameters (α, γ, nll_weight) come with
  ``objective`` and are validated by the lab's config with the lab's defaults. An objective that names a
  different β is refused rather than silently overridden.

Logged, under TRL's keys: ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins`` (the objective's
own rewards: β·l for CAPO, β·l/|y| for SimPO, β(l − r) for DPO and DPO+NLL), ``rewards/accuracies``
(margin > 0; for CAPO that is the paper's lw > ll), ``logps/chosen`` and ``logps/rejected``. A
mixture-of-experts router's auxiliary loss is not added (the lab's trainer adds none).

    from trl import DPOConfig
    from capo.trl import CapoTrainer
    args = DPOConfig(output_dir="capo-out", beta=0.1)
    trainer = CapoTrainer(model, args=args, objective={"name": "capo", "alpha": 2.0}, train_dataset=pairs,
                          processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM"))
    trainer.train()
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import torch
from packaging.version import Version
from pydantic import BaseModel
from torch import Tensor

from capo.config import config_from_dict
from capo.errors import Problems, UserError
from capo.objective_defs import OBJECTIVE_DEFS
from capo.objectives import ObjectiveOutput, PairLogps, compute_objective, get_objective

TRL_MIN_VERSION = "1.16"  # the first version tested; DPOTrainer's fused LM head arrived in 1.15


class TrlNotInstalled(UserError, ImportError):
    """``capo.trl`` imported where TRL is missing or older than ``TRL_MIN_VERSION``."""


if importlib.util.find_spec("trl") is None:
    raise TrlNotInstalled("capo.trl needs TRL: pip install 'capo-lab[trl]'")

import trl  # noqa: E402  (absolute: the TRL package, never this module)

if Version(trl.__version__) < Version(TRL_MIN_VERSION):
    raise TrlNotInstalled(
        f"capo.trl needs TRL >= {TRL_MIN_VERSION}, found {trl.__version__}: pip install 'capo-lab[trl]'"
    )

from accelerate.utils import is_peft_model  # noqa: E402  (what DPOTrainer uses)
from trl import DPOConfig, DPOTrainer  # noqa: E402
from trl.models.utils import disable_gradient_checkpointing  # noqa: E402
from trl.trainer.utils import use_adapter  # noqa: E402

# Collated keys that are not model inputs (DPOTrainer drops the same ones before its forward).
NOT_MODEL_INPUTS = frozenset({"completion_mask", "ref_chosen_logps", "ref_rejected_logps"})
# DPOTrainer's own loss options and their defaults: any other value would be silently ignored here.
TRL_LOSS_OPTIONS: dict[str, Any] = {
    "loss_type": ["sigmoid"],
    "loss_weights": None,
    "ld_alpha": None,
    "f_divergence_type": "reverse_kl",
    "label_smoothing": 0.0,
    "use_weighting": False,
}
REFERENCE_OPTIONS = ("precompute_ref_log_probs", "sync_ref_model")
OBJECTIVE_FORMS = f"a name ({', '.join(OBJECTIVE_DEFS)}), a mapping with 'name', or an objective config"


def lab_objective(objective: str | Mapping[str, Any] | BaseModel, beta: float) -> BaseModel:
    """The objective's config (capo/config.py) with β = ``beta`` (``DPOConfig.beta``).

    ``objective`` is a name, a mapping (``{"name": "capo", "alpha": 2.0}``) or a config such as a run's
    ``RunConfig.objective``; parameters left out take the lab's defaults. ``ConfigError`` names a bad
    parameter; ``Problems`` refuses a β that differs from ``beta``."""
    if isinstance(objective, str):
        raw: dict[str, Any] = {"name": objective}
    elif isinstance(objective, BaseModel):
        raw = objective.model_dump()
    elif isinstance(objective, Mapping):
        raw = dict(objective)
    else:
        raise Problems([("objective", f"{type(objective).__name__} is not {OBJECTIVE_FORMS}")])
    if raw.setdefault("beta", beta) != beta:
        message = (
            f"the objective's β {raw['beta']} differs from DPOConfig.beta {beta}: set β once, in DPOConfig"
        )
        raise Problems([("beta", message)])
    return config_from_dict({"objective": raw}).objective


def unused_options(args: DPOConfig, needs_reference: bool, ref_model: Any) -> list[tuple[str, str]]:
    """The options this trainer would silently ignore (or pay for without using), as ``Problems`` rows."""
    problems = [
        (name, f"{getattr(args, name)!r} is a DPOTrainer loss option that the lab's objective ignores")
        for name, default in TRL_LOSS_OPTIONS.items()
        if getattr(args, name) != default
    ]
    if not needs_reference:
        problems += [
            (name, "a reference-free objective reads no reference")
            for name in REFERENCE_OPTIONS
            if getattr(args, name)
        ]
        if ref_model is not None:
            problems.append(("ref_model", "a reference-free objective reads no reference model"))
    return problems


def completion_token_logps(model: torch.nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """Per-token log-probs [2B, T − 1] of the completion tokens (0 elsewhere), from TRL's fused LM head."""
    model_inputs = {k: v for k, v in inputs.items() if k not in NOT_MODEL_INPUTS}
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
    outputs = model(**model_inputs, labels=labels, fused_lm_head=True, use_cache=False)
    # Prompt-learning PEFT prepends virtual tokens: keep the positions of the real ones, as DPOTrainer does.
    return outputs.log_probs[:, -(labels.shape[1] - 1) :]


class CapoTrainer(DPOTrainer):
    """DPOTrainer training one of the lab's objectives: ``capo`` (default), ``simpo``, ``dpo_nll`` or ``dpo``.

    Takes DPOTrainer's arguments (``args`` must be a ``DPOConfig``) plus ``objective`` (``lab_objective``).
    Bad settings raise one ``UserError`` before any model work."""

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: DPOConfig | None = None,
        *,
        objective: str | Mapping[str, Any] | BaseModel = "capo",
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, DPOConfig):
            raise Problems([("args", "pass a DPOConfig: its beta is the objective's β")])
        self.lab_objective = lab_objective(objective, args.beta)
        self.objective_spec = get_objective(self.lab_objective.name)
        self.objective_params = self.lab_objective.model_dump()
        problems = unused_options(args, self.objective_spec.needs_reference, ref_model)
        if problems:
            raise Problems(problems)
        super().__init__(model, ref_model, args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The batch's mean loss (TRL's reduction; the lab's trainer also averages over pairs)."""
        logps, out = self.pair_losses(model, inputs)
        self._log_pair_metrics(logps, out)
        loss = out.loss.mean()
        if return_outputs:  # only for compute_metrics, which reads logits: a plain forward, like TRL's
            with torch.no_grad():
                return loss, model(**{k: v for k, v in inputs.items() if k not in NOT_MODEL_INPUTS})
        return loss

    def pair_losses(self, model, inputs: Mapping[str, Tensor]) -> tuple[PairLogps, ObjectiveOutput]:
        """The objective on one collated batch (chosen rows first, then rejected), per pair, unreduced."""
        chosen, rejected = self._summed(completion_token_logps(model, inputs)).chunk(2)
        counts = inputs["completion_mask"][:, 1:].sum(dim=1)  # the tokens scored (the first has no context)
        ref_chosen = ref_rejected = None
        if self.objective_spec.needs_reference:
            ref_chosen, ref_rejected = self._reference_logps(inputs)
        logps = PairLogps(chosen, rejected, *counts.chunk(2), ref_chosen, ref_rejected)
        return logps, compute_objective(self.objective_spec.name, logps, self.objective_params)

    def compute_ref_log_probs(self, model, inputs):
        """The reference's summed log-probs, summed like the policy's (TRL's precompute calls this too)."""
        adapter: contextlib.AbstractContextManager = contextlib.nullcontext()
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            # A fresh adapter's reference is the base (adapters off); a resumed adapter's is TRL's "ref" copy.
            adapter = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        no_checkpointing = disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs)
        with torch.no_grad(), no_checkpointing, adapter, self.accelerator.autocast():
            per_token = completion_token_logps(model, inputs)
        return self._summed(per_token).chunk(2)

    def _reference_logps(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        if self.precompute_ref_logps:
            return inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        return self.compute_ref_log_probs(self.model if self.ref_model is None else self.ref_model, inputs)

    def _summed(self, per_token: Tensor) -> Tensor:
        """Per-response sums in float32 (float64 for a float64 model), as capo.scoring sums them."""
        dtype = torch.float64 if self.model.dtype == torch.float64 else torch.float32
        return per_token.to(dtype).sum(dim=1)

    def _log_pair_metrics(self, logps: PairLogps, out: ObjectiveOutput) -> None:
        """TRL's metric keys for the objective's rewards, averaged over every process's pairs."""
        mode = "train" if self.model.training else "eval"
        values = {
            "rewards/chosen": out.chosen_rewards,
            "rewards/rejected": out.rejected_rewards,
            "rewards/margins": out.reward_margin,
            "rewards/accuracies": (out.reward_margin > 0).float(),
            "logps/chosen": logps.chosen,
            "logps/rejected": logps.rejected,
        }
        for key, value in values.items():
            self._metrics[mode][key].append(self.accelerator.gather(value.detach()).mean().item())
