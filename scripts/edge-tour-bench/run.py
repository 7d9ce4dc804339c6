"""edge-tour-bench: latency, private-set accuracy and fidelity of one tournament entry."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from edgelib.ort import make_session, predict, timed_runs
from edgelib.stats import latency_summary_us


def _tensors(g: onnx.GraphProto):
    yield from g.initializer
    for sp in g.sparse_initializer:
        yield from (sp.values, sp.indices)
    for n in g.node:
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(sub)


def refuse_external_data(path) -> None:
    """An entry's graph may not name files: external data could point at the scoring set."""
    m = onnx.load(str(path), load_external_data=False)
    for t in _tensors(m.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
            raise ValueError(f"{path.name}: tensor {t.name!r} uses external data (not allowed)")


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    path = ctx.deps["onnx"].files["model"]
    with np.load(ctx.deps["scoring"].files["scoring"]) as z:
        x = np.ascontiguousarray(z["x"], dtype=np.float32)
        y = z["y"].astype(np.int64)
    if x.ndim != 2 or x.shape[1] != 64 or len(x) != len(y):
        raise ValueError(f"scoring set has shape {x.shape} / {y.shape}, expected (n, 64) / (n,)")
    refuse_external_data(path)
    threads, runs, warmup = int(inp["threads"]), int(inp["runs"]), int(inp["warmup"])
    sess = make_session(path, threads)
    with ctx.timer("accuracy"):
        pred = predict(sess, x).argmax(axis=1)
        ref = predict(make_session(ctx.deps["trained"].files["onnx"], 1), x).argmax(axis=1)
    with ctx.timer("timed_loop"), ctx.energy.measure() as e:
        samples = timed_runs(sess, x, runs, warmup)
    lat = latency_summary_us(samples)
    joules = float(e.joules)
    energy_mj = joules * 1e3 / (runs + warmup)  # the window includes the warm-up calls
    acc, agree = float((pred == y).mean()), float((pred == ref).mean())
    ctx.log.info(
        f"{inp['model']} {inp['precision']} x{threads}: p90 {lat['latency_p90_us']:.1f} us, "
        f"private acc {acc:.4f}, agreement {agree:.4f}, {energy_mj:.4f} mJ/inf (estimated)"
    )
    return {
        "metrics": {
            **lat,
            "accuracy": acc,
            "fp32_accuracy": float((ref == y).mean()),
            "agreement": agree,
            "model_size_kb": path.stat().st_size / 1024,
            "energy_per_inference_mj": energy_mj,
        },
        "values": {
            "energy_method": e.method,
            "onnxruntime": ort.__version__,
            "n_scoring": len(y),
        },
    }
