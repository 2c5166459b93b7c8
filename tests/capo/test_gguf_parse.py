"""The embedded model's conversion parses its GGUF header once, not once per transformers loader."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from capo.models import one_gguf_parse


def tiny_gguf(path: Path) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.arange(6, dtype=np.float32).reshape(2, 3))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_file_is_parsed_once_inside_the_block_and_afresh_outside(tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "tiny.gguf")
    original = gguf.GGUFReader
    with one_gguf_parse():
        from gguf import GGUFReader  # as transformers' loaders import it: at call time

        first, second = GGUFReader(path), GGUFReader(str(path))
        assert first is second
        assert [bytes(first.fields["tokenizer.ggml.tokens"].parts[i]) for i in (-5, -3, -1)] == [
            b"a",
            b"b",
            b"c",
        ]
    assert gguf.GGUFReader is original
    assert gguf.GGUFReader(path) is not gguf.GGUFReader(path)
