"""A tiny tournament over a tiny experiment, for the tournament tests.

`tiny-fit` (replaceable by submissions) fits a polynomial of degree `degree` to sin on
[0, pi]; `tiny-score` (the organiser's measured step) evaluates the coefficients: max
error and per-call evaluation time. Higher degrees trade time for error, so the
objectives (error, eval_us) have a real Pareto front. Both run in the small `base` env.
"""

from __future__ import annotations

import json
import tarfile
import textwrap
from pathlib import Path

FIT_META = """\
alias: tiny-fit
uid: 00000000000000f1
tags: [tiny, fit]
description: Fits a polynomial to sin on [0, pi] (the step a submission may replace).
version: "1"
env: base
run: run.py
inputs:
  degree: {type: integer, minimum: 0, maximum: 12, default: 3}
outputs:
  metrics:
    fit_s: {unit: s, better: lower, optional: true}
  files:
    coeffs: {}
"""
FIT_PY = """\
import json
import numpy as np


def run(ctx):
    x = np.linspace(0, np.pi, 200)
    c = np.polyfit(x, np.sin(x), ctx.inputs["degree"])
    (ctx.out_dir / "coeffs.json").write_text(json.dumps(c.tolist()))
    return {"files": {"coeffs": "coeffs.json"}}
"""
SCORE_META = """\
alias: tiny-score
uid: 00000000000000f2
tags: [tiny, score]
description: Measures a polynomial's max error vs sin and its per-call evaluation time.
version: "1"
env: base
run: run.py
inputs:
  degree: {type: integer, minimum: 0, maximum: 12, default: 3}
  calls: {type: integer, minimum: 1, default: 3000}
deps:
  - {name: fit, tags: "tiny,fit", inputs: {degree: "{degree}"}}
outputs:
  metrics:
    error: {unit: "1", better: lower}
    eval_us: {unit: us, better: lower}
resources:
  timeout_s: 60
"""
SCORE_PY = """\
import json
import math
import time


def run(ctx):
    c = json.loads(ctx.deps["fit"].files["coeffs"].read_text())
    if not isinstance(c, list) or not 0 < len(c) <= 64:
        raise ValueError("coeffs must be a list of 1..64 numbers")
    c = [float(v) for v in c]

    def f(x):
        y = 0.0
        for v in c:
            y = y * x + v
        return y

    xs = [math.pi * i / 999 for i in range(1000)]
    err = max(abs(f(x) - math.sin(x)) for x in xs)
    n = ctx.inputs["calls"]
    t0 = time.perf_counter()
    for i in range(n):
        f(xs[i % 1000])
    return {"metrics": {"error": err, "eval_us": (time.perf_counter() - t0) / n * 1e6}}
"""
EXPERIMENT = """\
name: tiny
description: polynomial fit of sin, scored for error and evaluation time
script: tiny,score
grid:
  degree: [1, 3, 5]
repetitions: 2
"""
TOURNAMENT = {
    "id": "tiny",
    "title": "Tiny sine fit",
    "description": "Smallest error and fastest evaluation of a polynomial sine.",
    "open": "2020-01-01",
    "close": "2099-01-01",
    "base": {"experiment": "tiny", "inputs": {"calls": 2000}},
    "submission": {
        "inputs": {
            "type": "object",
            "required": ["degree"],
            "properties": {"degree": {"type": "integer", "minimum": 1, "maximum": 9}},
        },
        "script": {"step": "tiny-fit", "max_files": 10, "max_bytes": 65536},
    },
    "objectives": [
        {"metric": "error", "direction": "minimize"},
        {"metric": "eval_us", "direction": "minimize"},
    ],
    "constraints": [{"metric": "error", "op": "<=", "value": 0.05}],
    "ranking": {"method": "pareto", "tie_break": ["error", "eval_us"]},
    # the older tests submit unsigned and often: the identity/limit tests change these
    "identity": {"mode": "open"},
    "submissions": {"limit": 1000, "window_h": 24},
    "verification": {
        "repetitions": 2,
        "env": "base",
        "claim_tolerance": 0.5,
        "limits": {"cpus": 1, "mem_mb": 200, "pids": 64, "timeout_s": 5, "tmp_mb": 16,
                   "file_mb": 8, "disk_mb": 16},
    },
}  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def add_tiny_tournament(repo: Path, **changes) -> None:
    """tiny-fit, tiny-score, experiment `tiny` and tournament `tiny` (+ `changes`)."""
    write(repo / "scripts/tiny-fit/meta.yaml", FIT_META)
    write(repo / "scripts/tiny-fit/run.py", FIT_PY)
    write(repo / "scripts/tiny-score/meta.yaml", SCORE_META)
    write(repo / "scripts/tiny-score/run.py", SCORE_PY)
    write(repo / "workflows/experiments/tiny.yaml", EXPERIMENT)
    spec = {**TOURNAMENT, **changes}
    write(repo / "workflows/tournaments/tiny.yaml", json.dumps(spec, indent=2))


def submission(folder: Path, name: str, degree: int = 3, **fields) -> Path:
    data = {"participant": fields.pop("participant", "ana"), "entry": name,
            "inputs": {"degree": degree}, **fields}  # fmt: skip
    return write(folder / f"{name}.yaml", json.dumps(data))


def script_archive(folder: Path, name: str, run_py: str) -> Path:
    """A .tar.gz holding a tiny-fit replacement whose run.py is `run_py`."""
    src = write(folder / name / "run.py", run_py)
    out = folder / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname="run.py")
    return out
