"""train.bf16 "auto" is decided once, for the run's device, before anything is fingerprinted."""

import pytest

from capo import precision
from capo.config import config_from_dict


@pytest.mark.parametrize("native", [True, False])
def test_auto_becomes_what_the_device_computes(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    cfg = config_from_dict({"train": {"device": "cpu"}})
    assert cfg.train.bf16 == "auto"
    assert precision.resolve_bf16(cfg).train.bf16 is native


def test_an_explicit_setting_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    cfg = config_from_dict({"train": {"bf16": False}})
    assert precision.resolve_bf16(cfg) is cfg
