"""Loading real models: the attention kernel the config names, and the hub's refusal (gated model) as one
line naming the model and HF_TOKEN."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers.utils.hub
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from capo.config import ConfigError, ModelConfig, config_from_dict
from capo.models import ModelAccessError, load_base_model, model_has_chat_template
from capo.packing import scoring_layout

CPU = torch.device("cpu")
GATED = "meta-llama/Llama-3.1-8B-Instruct"


def tiny(**model) -> ModelConfig:
    return ModelConfig(name_or_path="tiny-random-llama", **model)


def test_the_config_takes_the_five_kernels_and_names_the_key_for_others() -> None:
    for kernel in ("auto", "sdpa", "eager", "flash_attention_2", "flex_attention"):
        cfg = config_from_dict({"model": {"attn_implementation": kernel}})
        assert cfg.model.attn_implementation == kernel
    with pytest.raises(ConfigError, match=r"^model\.attn_implementation: "):
        config_from_dict({"model": {"attn_implementation": "flash_attention_3"}})


@pytest.mark.parametrize("nf4", [False, True])
def test_the_named_kernel_reaches_the_model(tmp_path: Path, nf4: bool) -> None:
    cfg = tiny(attn_implementation="eager", load_in_4bit=nf4, dtype="float32")
    loaded = load_base_model(cfg, tmp_path, CPU)
    assert loaded.model.config._attn_implementation == "eager"
    assert not any("attn_implementation" in note for note in loaded.notes)


def test_a_kernel_this_machine_lacks_falls_back_to_transformers_choice_with_a_note(tmp_path: Path) -> None:
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here; its absence is what this test needs")
    loaded = load_base_model(tiny(attn_implementation="flash_attention_2"), tmp_path, CPU)
    assert loaded.model.config._attn_implementation == "sdpa"  # transformers' own choice on CPU
    (note,) = [n for n in loaded.notes if "attn_implementation" in n]
    said = 'model.attn_implementation flash_attention_2 unavailable here: transformers said "'
    assert note.startswith(said)
    assert note.endswith("; using auto")


def test_packing_falls_back_to_padded_rows_with_a_note_under_kernels_without_the_block_mask() -> None:
    model = load_base_model(tiny(), Path("unused"), CPU).model
    model.config._attn_implementation = "flash_attention_2"  # what from_pretrained records on a GPU
    packed, note = scoring_layout("packed", model)
    assert not packed
    assert note.startswith(
        "train.scoring packed: attention implementation 'flash_attention_2' takes no custom"
    )
    model.config._attn_implementation = "flex_attention"  # takes the block mask, but cannot train on CPU
    packed, note = scoring_layout("packed", model)
    assert not packed and "FlexAttention has no backward on CPU" in note and "padded rows" in note


def refusing_hub(status: int, error: type[Exception]):
    """huggingface_hub's download raising what the hub answers for a gated model without access."""
    response = SimpleNamespace(status_code=status, headers={}, request=None)

    def download(*args, **kwargs):
        raise error(f"{status} Client Error. Cannot access gated repo for url …", response=response)

    return download


@pytest.mark.parametrize(("status", "error"), [(403, GatedRepoError), (401, RepositoryNotFoundError)])
def test_the_hubs_refusal_is_one_line_naming_the_model_and_hf_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, error: type[Exception]
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing to recover from
    monkeypatch.setattr(transformers.utils.hub, "hf_hub_download", refusing_hub(status, error))
    for load in (
        lambda: load_base_model(ModelConfig(name_or_path=GATED), tmp_path, CPU),
        lambda: model_has_chat_template(GATED),
    ):
        with pytest.raises(ModelAccessError) as refused:
            load()
        message = str(refused.value)
        assert "\n" not in message and f"model {GATED!r}" in message and "HF_TOKEN" in message
        assert f"(HTTP {status})" in message and refused.value.__cause__ is None


def test_a_missing_local_folder_is_not_called_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(OSError) as failed:
        load_base_model(ModelConfig(name_or_path=str(tmp_path / "no-such-model")), tmp_path, CPU)
    assert not isinstance(failed.value, ModelAccessError)
