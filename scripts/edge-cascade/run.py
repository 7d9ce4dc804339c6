"""edge-cascade: small->large confidence cascade with an input-hash result cache.

After "Dual Complementary CNNs" style edge inference: a cheap model answers when its
softmax confidence clears `threshold`, otherwise the large model is asked; repeated
inputs are answered from an LRU cache keyed by a hash of the input bytes. The same
stream is also served by the large model alone, so claims can compare the two.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from edgelib.data import load_digits_npz
from edgelib.ort import INPUT_NAME, make_session


def make_stream(n_unique: int, repeat_prob: float, seed: int) -> np.ndarray:
    """Indices into the test set: each sample once fresh (shuffled), plus repeats.

    Every position is, with probability `repeat_prob`, a repeat of an already seen
    sample (uniform over those), else the next fresh one; so the stream length is
    about n_unique / (1 - repeat_prob) and the ideal (infinite-cache) hit rate is
    about repeat_prob.
    """
    rng = np.random.default_rng(seed)
    fresh = rng.permutation(n_unique)
    out: list[int] = []
    nxt = 0
    while nxt < n_unique:
        if out and rng.random() < repeat_prob:
            out.append(out[int(rng.integers(len(out)))])
        else:
            out.append(int(fresh[nxt]))
            nxt += 1
    return np.asarray(out, dtype=np.int64)


def softmax_conf(logits: np.ndarray) -> tuple[int, float]:
    """(argmax, max softmax probability) of one logits row."""
    z = logits - logits.max()
    p = np.exp(z)
    p /= p.sum()
    k = int(p.argmax())
    return k, float(p[k])


@dataclass
class StreamResult:
    """Per-item outcome of serving one stream."""

    pred: np.ndarray
    latency_ns: np.ndarray
    to_large: np.ndarray
    cache_hit: np.ndarray


def serve_cascade(
    small: ort.InferenceSession,
    large: ort.InferenceSession,
    xs: list[np.ndarray],
    threshold: float,
    cache_size: int,
) -> StreamResult:
    """Serve xs (each (1, 64) float32) one by one; latency includes hashing + cache."""
    n = len(xs)
    res = StreamResult(
        np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    )
    cache: OrderedDict[bytes, int] = OrderedDict()
    clock = time.perf_counter_ns
    for i, x in enumerate(xs):
        t0 = clock()
        key = hashlib.blake2b(x.tobytes(), digest_size=16).digest()
        hit = cache.get(key) if cache_size > 0 else None
        if hit is not None:
            cache.move_to_end(key)
            pred = hit
            res.cache_hit[i] = True
        else:
            pred, conf = softmax_conf(small.run(None, {INPUT_NAME: x})[0][0])
            if conf < threshold:
                pred = int(large.run(None, {INPUT_NAME: x})[0][0].argmax())
                res.to_large[i] = True
            if cache_size > 0:
                cache[key] = pred
                if len(cache) > cache_size:
                    cache.popitem(last=False)
        res.latency_ns[i] = clock() - t0
        res.pred[i] = pred
    return res


def serve_single(sess: ort.InferenceSession, xs: list[np.ndarray]) -> StreamResult:
    """Baseline: every item through one model, no cache."""
    n = len(xs)
    res = StreamResult(
        np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    )
    clock = time.perf_counter_ns
    for i, x in enumerate(xs):
        t0 = clock()
        res.pred[i] = int(sess.run(None, {INPUT_NAME: x})[0][0].argmax())
        res.latency_ns[i] = clock() - t0
    return res


def _measured(ctx: Any, fn: Any, passes: int) -> tuple[StreamResult, float, np.ndarray, str]:
    """Run fn `passes` times in one energy window; (first result, joules, latencies, method)."""
    fn()  # warm-up pass: session allocations, lazy kernel init
    results = []
    with ctx.energy.measure() as e:
        for _ in range(passes):
            results.append(fn())
    lat = np.concatenate([r.latency_ns for r in results])
    return results[0], float(e.joules), lat, str(e.method)


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

    with ctx.timer("cascade"):
        cas, cas_j, cas_lat, method = _measured(
            ctx, lambda: serve_cascade(small, large, xs, thr, cap), passes
        )
    with ctx.timer("large_alone"):
        big, big_j, big_lat, _ = _measured(ctx, lambda: serve_single(large, xs), passes)
    small_acc = float((serve_single(small, xs).pred == y).mean())

    cas_mean, big_mean = cas_lat.mean() / 1e3, big_lat.mean() / 1e3
    cas_mj, big_mj = cas_j * 1e3 / n_inf, big_j * 1e3 / n_inf
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
