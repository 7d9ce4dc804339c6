"""edge-bench: batch-1 ONNX Runtime latency / accuracy / size / energy of one digits model."""

from __future__ import annotations

import os
from typing import Any

import onnxruntime as ort
from edgelib.data import load_digits_npz
from edgelib.ort import accuracy, make_session, op_histogram, timed_runs
from edgelib.stats import latency_summary_us


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    path = ctx.deps["onnx"].files["model"]
    d = load_digits_npz(ctx.deps["data"].files["dataset"])
    threads, runs, warmup = int(inp["threads"]), int(inp["runs"]), int(inp["warmup"])
    sess = make_session(path, threads)
    with ctx.timer("accuracy"):
        acc = accuracy(sess, d.x_test, d.y_test)
    with ctx.timer("timed_loop"), ctx.energy.measure() as e:
        samples = timed_runs(sess, d.x_test, runs, warmup)
    lat = latency_summary_us(samples)
    joules = float(e.joules)
    # The energy window includes the warm-up calls; charge it per call actually made.
    energy_mj = joules * 1e3 / (runs + warmup)
    metrics: dict[str, float] = {
        **lat,
        "throughput_ips": 1e6 / lat["latency_mean_us"],
        "accuracy": acc,
        "model_size_kb": path.stat().st_size / 1024,
        "energy_per_inference_mj": energy_mj,
    }
    torch_acc = ctx.deps["onnx"].values.get("torch_accuracy")
    if torch_acc is not None:
        metrics["accuracy_delta_vs_torch"] = acc - float(torch_acc)
    ctx.log.info(
        f"{inp['model']} {inp['precision']} x{threads}: p50 {lat['latency_p50_us']:.1f} us, "
        f"acc {acc:.4f}, {energy_mj:.4f} mJ/inf ({e.method})"
    )
    return {
        "metrics": metrics,
        "values": {
            "energy_method": e.method,
            "energy_joules": joules,
            "onnxruntime": ort.__version__,
            "ops": op_histogram(path),
            "cpu_count": os.cpu_count(),
            "quantize_settings": ctx.deps["onnx"].values.get("settings"),
        },
    }
