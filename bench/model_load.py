"""Load time of the embedded Gemma 3 270M: the first load converts the packaged GGUF (~1 min) and
caches safetensors; every later load reads the cache.

    python bench/model_load.py --cache ~/.capo-lab/models
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import torch

    from capo.config import ModelConfig
    from capo.models import EMBEDDED_GEMMA, embedded_gemma_folder, load_base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Path.home() / ".capo-lab" / "models"))
    cache = Path(parser.parse_args().cache)
    converted = (cache / EMBEDDED_GEMMA / "model.safetensors").exists()
    started = time.perf_counter()
    embedded_gemma_folder(cache)
    print(f"conversion: {'already cached' if converted else f'{time.perf_counter() - started:.1f} s'}")
    for attempt in (1, 2):
        started = time.perf_counter()
        loaded = load_base_model(ModelConfig(dtype="float32"), cache, torch.device("cpu"))
        print(
            f"load {attempt} from the cache: {time.perf_counter() - started:.1f} s "
            f"({sum(p.numel() for p in loaded.model.parameters()) / 1e6:.0f}M parameters)"
        )


if __name__ == "__main__":
    main()
