"""Cascade serving for edge-cascade: small->large confidence cascade + input-hash cache.

Lives in the script folder, not edgelib, so editing it never re-keys (retrains) the
shared dataset/train/quantize invocations that include edgelib.

After "Dual Complementary CNNs" style edge inference: a cheap model answers when its
softmax confidence clears `threshold`, otherwise the large model is asked; repeated
inputs are answered from an LRU cache keyed by a hash of the input bytes. The same
stream is also served by the large model alone, so claims can compare the two.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from edgelib.ort import INPUT_NAME


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
    small: ort.InferenceSession | None,
    large: ort.InferenceSession,
    xs: list[np.ndarray],
    threshold: float,
    cache_size: int,
) -> StreamResult:
    """Serve xs (each (1, 64) float32) one by one; latency includes hashing + cache.

    `small=None` serves everything with the large model (the baselines); `cache_size`
    0 disables the cache, so no hashing cost is paid either.
    """
    n = len(xs)
    res = StreamResult(
        np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    )
    cache: OrderedDict[bytes, int] = OrderedDict()
    clock = time.perf_counter_ns
    for i, x in enumerate(xs):
        t0 = clock()
        key = hashlib.blake2b(x.tobytes(), digest_size=16).digest() if cache_size > 0 else b""
        hit = cache.get(key) if cache_size > 0 else None
        if hit is not None:
            cache.move_to_end(key)
            pred = hit
            res.cache_hit[i] = True
        else:
            conf = -1.0
            if small is not None:
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


def serve_single(
    sess: ort.InferenceSession, xs: list[np.ndarray], cache_size: int = 0
) -> StreamResult:
    """Baseline: every item through one model, optionally behind the same cache."""
    return serve_cascade(None, sess, xs, threshold=1.0, cache_size=cache_size)


@dataclass
class Measured:
    """All timed passes of one serving mode: first pass's outcome, latencies, energy."""

    first: StreamResult
    latency_ns: np.ndarray
    joules: float
    method: str


def measure_interleaved(
    ctx: Any, modes: dict[str, Callable[[], StreamResult]], passes: int
) -> dict[str, Measured]:
    """Alternate the modes pass by pass (ABAB...), one energy window per pass.

    On a shared machine background load drifts; interleaving gives every mode the
    same conditions, so their ratio stays meaningful even when absolute numbers move.
    """
    for fn in modes.values():
        fn()  # warm-up pass: session allocations, lazy kernel init
    runs: dict[str, list[StreamResult]] = {k: [] for k in modes}
    joules = dict.fromkeys(modes, 0.0)
    method = ""
    for _ in range(passes):
        for name, fn in modes.items():
            with ctx.energy.measure() as e:
                runs[name].append(fn())
            joules[name] += float(e.joules)
            method = str(e.method)
    return {
        k: Measured(r[0], np.concatenate([x.latency_ns for x in r]), joules[k], method)
        for k, r in runs.items()
    }
