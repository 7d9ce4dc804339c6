"""vLLM (CPU backend) figures for the serving family: start-up, memory, batching, TBT tail.

    .venv/bin/python bench/bench_vllm.py [--reps 3] [--requests 16] [--json]

Prints, with median [min-max] over --reps repetitions whose arms are interleaved:
- engine start-up (vLLM import + engine construction) and peak resident memory;
- output tokens/s at batch limits 1, 4 and 16 (16 requests queued at once, 32-token
  prompts, 64 output tokens: decode-dominated, so the batch limit is what changes);
- the P99 time between tokens of whole-prompt prefill over chunked prefill with a
  256-token budget, serving the same seeded Poisson requests (256-1024-token prompts)
  at 1.3x the capacity calibrated here first (offline whole-prompt throughput).
Every figure is one real engine start (the driver in .venv-vllm), so a run takes
several minutes; the machine's load at start and end is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts/_lib/serving"), str(REPO / "scripts/_lib/vllmserve")]

from llmserve.metrics import summarize  # noqa: E402
from llmserve.scheduler import Request  # noqa: E402
from vllmserve import launch, serving  # noqa: E402

MODEL = {
    "hidden": 512,
    "layers": 4,
    "intermediate": 1536,
    "kv_heads": 8,
    "vocab": 8192,
    "max_position": 4096,
    "seed": 0,
    "heads": 8,
}  # fmt: skip (vllm-model's defaults)
ENGINE = {"dtype": "float32", "max_model_len": 2048, "threads": 1, "kv_cache_gib": 1,
          "vocab": 8192, "seed": 0}  # fmt: skip
MIX = {"prompt_len_min": 256, "prompt_len_max": 1024, "output_len_min": 32,
       "output_len_max": 96, "length_dist": "uniform", "seed": 0}  # fmt: skip


def fmt(xs: list[float], unit: str = "", digits: int = 2) -> str:
    return f"{statistics.median(xs):.{digits}f}{unit} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"


def serve(model: Path, work: Path, reqs: list[Request], policy: str, seqs: int) -> dict:
    run = Path(tempfile.mkdtemp(dir=work))
    return serving.run_engine(
        {**ENGINE, "policy": policy, "max_num_seqs": seqs}, model, reqs, run, 900
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=16, help="requests per TBT run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    load0 = os.getloadavg()[0]
    print(f"bench_vllm: building the model in {work} (load {load0:.1f})", file=sys.stderr)
    info = launch.call("build_model", {**MODEL, "out": str(work / "m")}, work, 600, "build")
    model = work / "m"
    mix = {**MIX, "n_requests": a.requests}
    cal = serving.workload(mix, rate_rps=1.0)
    for r in cal:
        r.arrival = 0.0
    res = serve(model, work, cal, "whole-prompt", 16)
    cap = len(cal) / max(r.finish for r in cal)  # type: ignore[type-var]
    print(f"bench_vllm: capacity {cap:.3f} req/s (offline whole-prompt)", file=sys.stderr)
    fig: dict[str, list[float]] = {"startup_s": [], "rss_mb": []}
    for rep in range(a.reps):
        for b in (1, 4, 16):  # interleaved: each repetition visits every arm once
            reqs = [Request(rid=i, arrival=0.0, prompt_len=32, output_len=64) for i in range(16)]
            res = serve(model, work, reqs, "chunked-512", b)
            span = max(r.finish for r in reqs)  # type: ignore[type-var]
            fig.setdefault(f"tok_s_b{b}", []).append(16 * 64 / span)
            fig["startup_s"].append(res["startup"]["import_s"] + res["startup"]["engine_s"])
            fig["rss_mb"].append(res["rss_peak_mb"])
        p99 = {}
        for policy in ("whole-prompt", "chunked-256"):
            reqs = serving.workload(mix, rate_rps=1.3 * cap)
            serve(model, work, reqs, policy, 16)
            p99[policy] = summarize(reqs)["tbt_p99_ms"]
            fig.setdefault(f"tbt_p99_ms_{policy}", []).append(p99[policy])
        fig.setdefault("tbt_p99_ratio", []).append(p99["whole-prompt"] / p99["chunked-256"])
        print(f"bench_vllm: repetition {rep + 1}/{a.reps} done", file=sys.stderr)
    out = {
        "params": info["params"],
        "capacity_rps": cap,
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "figures": {
            k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
            for k, v in fig.items()
        },  # fmt: skip
    }
    if a.json:
        print(json.dumps(out, indent=1))
        return 0
    print(
        f"model: {info['params'] / 1e6:.1f} M parameters (float32), 1 thread; load {load0:.1f} -> {out['load_end']:.1f}"
    )
    print(
        f"start-up (import + engine): {fmt(fig['startup_s'], ' s', 1)}   peak RSS {fmt(fig['rss_mb'], ' MB', 0)}"
    )
    for b in (1, 4, 16):
        print(f"tokens/s at batch {b:>2}: {fmt(fig[f'tok_s_b{b}'], '', 1)}")
    print(
        f"batch 16 / batch 1: {fmt([x / y for x, y in zip(fig['tok_s_b16'], fig['tok_s_b1'], strict=True)], 'x')}"
    )
    print(f"TBT p99 at 1.3x capacity: whole-prompt {fmt(fig['tbt_p99_ms_whole-prompt'], ' ms', 0)}, "
          f"chunked-256 {fmt(fig['tbt_p99_ms_chunked-256'], ' ms', 0)}; ratio {fmt(fig['tbt_p99_ratio'], 'x')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
