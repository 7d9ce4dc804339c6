"""Build a random-weight Llama-architecture model (Mistral with a sliding window) locally (no hub) and save it.

Runs under vLLM's interpreter (it has transformers): `python -m vllmserve.build_model
SPEC.json RESULT.json` (SPEC names the output folder). Weights are seeded, saved as safetensors with config.json; there is
no tokenizer (the engine takes token ids).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def build(spec: dict, out: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    t0 = time.perf_counter()
    torch.manual_seed(int(spec["seed"]))
    window = int(spec.get("sliding_window", 0))
    # a sliding window needs Mistral's architecture (Llama's has none in vLLM); the same
    # layers otherwise, so a windowed model differs from the plain one only there
    Config, Model = (
        (MistralConfig, MistralForCausalLM) if window else (LlamaConfig, LlamaForCausalLM)
    )
    extra = {"sliding_window": window} if window else {}
    cfg = Config(
        **extra,
        hidden_size=spec["hidden"],
        num_hidden_layers=spec["layers"],
        intermediate_size=spec["intermediate"],
        num_attention_heads=spec["heads"],
        num_key_value_heads=spec["kv_heads"],
        vocab_size=spec["vocab"],
        max_position_embeddings=spec["max_position"],
        tie_word_embeddings=False,
    )
    model = Model(cfg).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    # bytes a decode step must stream (every weight once, float32) against the
    # flops of one prefill token: decode is memory-bound when the former dwarfs caches
    return {"params": params, "weight_bytes_fp32": params * 4, "seconds": time.perf_counter() - t0}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    info = build(spec, Path(spec["out"]))
    Path(argv[1]).write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
