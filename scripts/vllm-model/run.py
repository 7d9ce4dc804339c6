"""vllm-model: build a seeded random-weight Llama model for vLLM (under vLLM's interpreter)."""

from __future__ import annotations

from typing import Any

from vllmserve import launch


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    out = ctx.out_dir / "model"
    spec = {**inp, "heads": inp["hidden"] // 64, "out": str(out)}
    info = launch.call("build_model", spec, ctx.out_dir, timeout_s=540, name="build")
    ctx.log.info("built %.1f M parameters in %.1f s", info["params"] / 1e6, info["seconds"])
    return {
        "metrics": {
            "params_m": info["params"] / 1e6,
            "weight_mb": info["weight_bytes_fp32"] / 1e6,
            "build_s": info["seconds"],
        },
        "files": {"model": "model"},
        "values": {"params": info["params"], "config": spec | {"out": None}},
    }
