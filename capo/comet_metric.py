"""COMET segment scores from a local checkpoint, with ``unbabel-comet``'s own model code.

A checkpoint is a folder holding ``checkpoints/model.ckpt`` and ``hparams.yaml`` (what
``hf download Unbabel/wmt22-comet-da`` writes), or that ``model.ckpt`` itself. It is read offline:
the encoder's tokenizer and config (``pretrained_model`` in ``hparams.yaml``, e.g.
``xlm-roberta-large``) must be a local folder or already in the Hugging Face cache.

``unbabel-comet`` 2.2.7, its newest release, pins transformers < 5; the lab runs transformers 5.
It is installed without its pins (README, "COMET") and one incompatibility is mended here, the one
upstream's open pull request Unbabel/COMET#271 fixes: transformers 5 drops the missing pooler
output from an XLM-R model's tuple, so COMET's ``XLMREncoder.forward`` unpacks two values into
three. The mended forward reads the same two tensors by name. Models whose encoder joins two
sequences (CometKiwi, XCOMET) also need the tokenizer's removed ``build_inputs_with_special_tokens``
(the same pull request); those are refused here with one line.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capo.errors import UserError

INSTALL = (
    "COMET needs unbabel-comet installed without its pins: "
    ".venv/bin/pip install -e '.[comet]' && .venv/bin/pip install --no-deps unbabel-comet==2.2.7"
)
HOW_TO_GET = (
    "no COMET checkpoint: pass --comet-checkpoint PATH (or set CAPO_LAB_COMET_CHECKPOINT), a folder "
    "with checkpoints/model.ckpt and hparams.yaml, e.g. `hf download Unbabel/wmt22-comet-da "
    "--local-dir PATH` on a machine with the hub (its encoder, xlm-roberta-large, goes in the cache too)"
)
SUPPORTED = ("regression_metric", "referenceless_regression_metric")
_QUIET = ("comet", "pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")
log = logging.getLogger(__name__)


class CometError(UserError):
    """A COMET checkpoint that is missing, of an unsupported kind, or does not load."""


def checkpoint_file(path: str | Path) -> Path:
    """``model.ckpt`` of a checkpoint folder (or the file itself); one line if it is not there."""
    found = Path(path).expanduser()
    if found.is_dir():
        found = found / "checkpoints" / "model.ckpt"
    if not found.is_file():
        raise CometError(f"COMET checkpoint {str(path)!r} not found: a folder with checkpoints/model.ckpt")
    if not (found.parents[1] / "hparams.yaml").is_file():
        raise CometError(f"COMET checkpoint {str(path)!r} has no hparams.yaml beside checkpoints/")
    return found


def _model_kind(ckpt: Path) -> str:
    import yaml

    try:
        hparams = yaml.safe_load((ckpt.parents[1] / "hparams.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CometError(f"COMET checkpoint {str(ckpt)!r}: hparams.yaml does not read: {exc}") from None
    kind = hparams.get("class_identifier") if isinstance(hparams, dict) else None
    if kind not in SUPPORTED:
        raise CometError(
            f"COMET model kind {kind!r} is not supported here (supported: {', '.join(SUPPORTED)}): "
            "CometKiwi and XCOMET need unbabel-comet's transformers-5 fix (Unbabel/COMET#271)"
        )
    return kind


def _mend_for_transformers_5() -> None:
    """COMET's XLM-R forward, reading the encoder's outputs by name (the module docstring)."""
    from comet.encoders.xlmr import XLMREncoder

    if getattr(XLMREncoder.forward, "mended_by_capo", False):
        return

    def forward(self, input_ids, attention_mask, **kwargs) -> dict[str, Any]:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, return_dict=True
        )
        hidden = out.last_hidden_state
        return {"sentemb": hidden[:, 0, :], "wordemb": hidden, "all_layers": out.hidden_states,
                "attention_mask": attention_mask}  # fmt: skip

    forward.mended_by_capo = True  # type: ignore[attr-defined]
    XLMREncoder.forward = forward


class CometScorer:
    """One loaded COMET model; ``scores(segments)`` gives each (source, translation, reference)
    segment its score, in order (``capo.translation_quality.SegmentScorer``)."""

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 16) -> None:
        ckpt = checkpoint_file(path)
        self.kind = _model_kind(ckpt)
        self.path, self.device, self.batch_size = ckpt, device, batch_size
        with _quiet():  # importing Lightning warns of torch.jit's deprecation
            try:
                import comet
            except ImportError:
                raise CometError(INSTALL) from None
            _mend_for_transformers_5()
            try:
                self.model = comet.load_from_checkpoint(str(ckpt), local_files_only=True)
            except Exception as exc:  # a file COMET cannot read is the user's: one line, the cause named
                log.debug("COMET load of %s failed", ckpt, exc_info=True)
                raise CometError(
                    f"COMET checkpoint {str(path)!r} does not load: {_first_line(exc)}"
                ) from None

    def scores(self, segments: Sequence[tuple[str, str, str]]) -> list[float]:
        if not segments:
            return []
        samples = [{"src": src, "mt": mt, "ref": ref} for src, mt, ref in segments]
        on_gpu = self.device.startswith("cuda")  # "cuda:1": that GPU, as COMET's devices list
        devices = [int(self.device.partition(":")[2] or 0)] if on_gpu else None
        with _quiet():
            out = self.model.predict(
                samples, self.batch_size, gpus=int(on_gpu), devices=devices, progress_bar=False, num_workers=0
            )
        return [float(s) for s in out.scores]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextmanager
def _quiet() -> Iterator[None]:
    """COMET's and Lightning's INFO lines ("GPU available…", tips) and their warnings, held down."""
    levels = {name: logging.getLogger(name).level for name in _QUIET}
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
