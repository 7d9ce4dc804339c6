"""edge-quantize: fp32 ONNX -> {fp32, int8-dynamic, int8-static, int2-static} (onnxruntime.quantization)."""

from __future__ import annotations

import time
from typing import Any

from edgelib.data import load_digits_npz
from edgelib.ort import op_histogram, optimized_op_histogram, quantize


def run(ctx: Any) -> dict[str, Any]:
    precision = ctx.inputs["precision"]
    src = ctx.deps["model"].files["onnx"]
    calib = None
    if precision in ("int8-static", "int2-static"):
        d = load_digits_npz(ctx.deps["data"].files["dataset"])
        calib = d.x_train[: int(ctx.inputs["calib_samples"])]  # never the test split
    dst = ctx.out_dir / "model.onnx"
    t0 = time.perf_counter()
    with ctx.timer("quantize"):
        settings = quantize(src, dst, precision, calib)
    elapsed = time.perf_counter() - t0
    ops = op_histogram(dst)
    ctx.log.info(
        f"{ctx.inputs['model']} {precision}: {dst.stat().st_size / 1024:.0f} KiB, ops {ops}"
    )
    return {
        "metrics": {
            "model_size_kb": dst.stat().st_size / 1024,
            "quantize_time_s": elapsed,
        },
        "files": {"model": "model.onnx"},
        "values": {
            "settings": settings,
            "ops": ops,
            "ops_optimized": optimized_op_histogram(dst, ctx.out_dir / "opt.tmp.onnx"),
            "torch_accuracy": ctx.deps["model"].metrics.get("accuracy"),
        },
    }
