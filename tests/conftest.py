"""Shared fixtures: the real MTPE data beside the repo and an isolated lab home."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

# Modules that read settings at import (the Huey instance) must never touch the user's lab.
os.environ["CAPO_LAB_HOME"] = tempfile.mkdtemp(prefix="capo-lab-tests-")
os.environ.pop("CAPO_LAB_QUEUE_URL", None)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CAPO_LAB_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
MLQE = SHARED_DATA / "mlqe-pe" / "post-editing"
MLQE_EN_DE_TRAIN = MLQE / "train" / "en-de-train.tar.gz"
MLQE_EN_ZH_TRAIN = MLQE / "train" / "en-zh-train.tar.gz"
DIVEMT = SHARED_DATA / "divemt" / "warmup.tsv"


def wait_for_port(port: int, seconds: float = 30) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; TimeoutError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DIVEMT.exists():
        pytest.fail(f"real MTPE data not found at {SHARED_DATA}; set CAPO_LAB_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture
def lab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CAPO_LAB_HOME with its SQLite database, isolated from the user's."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv("CAPO_LAB_HOME", str(home))
    monkeypatch.delenv("CAPO_LAB_DB_URL", raising=False)
    monkeypatch.delenv("CAPO_LAB_QUEUE_URL", raising=False)
    return home


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz with the given member names and bytes (names are written as given, even unsafe ones)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def build_tiny_comet(folder: Path) -> Path:
    """A COMET regression checkpoint with random weights, built here the way a tiny Llama is: a
    2-layer XLM-R encoder (its config and a character tokenizer saved in ``encoder/``, named in
    ``hparams.yaml``'s ``pretrained_model``), ``checkpoints/model.ckpt`` and ``hparams.yaml``, laid
    out as ``hf download Unbabel/wmt22-comet-da`` lays out the real one. Returns the folder."""
    import warnings

    import torch
    import yaml

    with warnings.catch_warnings():  # Lightning's import: torch.jit's deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        import pytorch_lightning
        from comet.models import RegressionMetric
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    encoder = folder / "encoder"
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    letters = sorted(set("abcdefghijklmnopqrstuvwxyzäöüßABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-▁"))
    vocab = [(t, 0.0) for t in specials] + [(c, -1.0) for c in letters]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
    ).save_pretrained(encoder)  # fmt: skip
    XLMRobertaConfig(
        vocab_size=len(specials) + len(letters), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    ).save_pretrained(encoder)  # fmt: skip
    torch.manual_seed(0)
    model = RegressionMetric(pretrained_model=str(encoder), load_pretrained_weights=False, hidden_sizes=[16])
    hparams = {**dict(model.hparams), "class_identifier": "regression_metric"}
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams), encoding="utf-8")
    (folder / "checkpoints").mkdir(exist_ok=True)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": pytorch_lightning.__version__}  # fmt: skip
    torch.save(checkpoint, folder / "checkpoints" / "model.ckpt")
    return folder


@pytest.fixture(scope="session")
def tiny_comet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_comet(tmp_path_factory.mktemp("tiny-comet"))
