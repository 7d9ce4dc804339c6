"""edge-cascade: small->large confidence cascade with an input-hash result cache.

After "Dual Complementary CNNs" style edge inference: a cheap model answers when its
softmax confidence clears `threshold`, otherwise the large model is asked; repeated
inputs are answered from an LRU cache keyed by a hash of the input bytes. The same
stream is also served by the large model alone, so claims can compare the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cascade_serving import make_stream, measure_interleaved, serve_cascade, serve_single
from edgelib.data import load_digits_npz
from edgelib.ort import make_session


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    d = load_digits_npz(ctx.deps["data"].files["dataset"])
    small = make_session(ctx.deps["small"].files["model"], int(inp["threads"]))
    large = make_session(ctx.deps["large"].files["model"], int(inp["threads"]))
    stream = make_stream(len(d.y_test), float(inp["repeat_prob"]), int(inp["seed"]))
    xs = [np.ascontiguousarray(d.x_test[j : j + 1]) for j in stream]
    y = d.y_test[stream]
    passes, thr, cap = int(inp["passes"]), float(inp["threshold"]), int(inp["cache_size"])
    n_inf = passes * len(xs)

    with ctx.timer("serve"):
        res = measure_interleaved(
            ctx,
            {
                "cascade": lambda: serve_cascade(small, large, xs, thr, cap),
                "large": lambda: serve_single(large, xs),
                "large_cached": lambda: serve_single(large, xs, cap),
            },
            passes,
        )
    cas, big = res["cascade"].first, res["large"].first
    cas_lat, big_lat, method = (
        res["cascade"].latency_ns,
        res["large"].latency_ns,
        res["large"].method,
    )
    cas_j, big_j = res["cascade"].joules, res["large"].joules
    small_acc = float((serve_single(small, xs).pred == y).mean())

    cas_mean, big_mean = cas_lat.mean() / 1e3, big_lat.mean() / 1e3
    cas_mj, big_mj = cas_j * 1e3 / n_inf, big_j * 1e3 / n_inf
    lc_mj = res["large_cached"].joules * 1e3 / n_inf
    metrics = {
        "accuracy": float((cas.pred == y).mean()),
        "small_accuracy": small_acc,
        "large_accuracy": float((big.pred == y).mean()),
        "frac_to_large": float(cas.to_large.mean()),
        "cache_hit_rate": float(cas.cache_hit.mean()),
        "latency_per_input_us": float(cas_mean),
        "latency_p50_us": float(np.percentile(cas_lat, 50) / 1e3),
        "latency_p99_us": float(np.percentile(cas_lat, 99) / 1e3),
        "large_latency_per_input_us": float(big_mean),
        "energy_per_inference_mj": cas_mj,
        "large_energy_per_inference_mj": big_mj,
        "energy_ratio_vs_large": cas_mj / big_mj if big_mj > 0 else float("nan"),
        "speedup_vs_large": float(big_mean / cas_mean),
        "large_cached_energy_per_inference_mj": lc_mj,
        "energy_ratio_vs_large_cached": cas_mj / lc_mj if lc_mj > 0 else float("nan"),
    }
    ctx.log.info(
        f"threshold {thr}: acc {metrics['accuracy']:.4f} (large {metrics['large_accuracy']:.4f}), "
        f"to_large {metrics['frac_to_large']:.3f}, hits {metrics['cache_hit_rate']:.3f}, "
        f"speedup {metrics['speedup_vs_large']:.2f}x"
    )
    return {
        "metrics": metrics,
        "values": {
            "stream_length": len(xs),
            "unique_inputs": int(len(np.unique(stream))),
            "inferences_timed": n_inf,
            "energy_method": method,
        },
    }
