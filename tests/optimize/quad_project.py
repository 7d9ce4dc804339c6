"""A throwaway efflab project with a known optimum, for the optimize tests.

Script `quad` (run.py, one dep on the tiny `gen` script so deps are shared):
loss = (x - 5)^2 + {a: 3, b: 0, c: 1}[kind] + 0.25 * noise, cost = x; the unconstrained
optimum is x=5, kind=b (loss 0); under cost<=3 it is x=3, kind=b (loss 4).
"""

from __future__ import annotations

from pathlib import Path

from conftest import make_tiny_repo, write

QUAD_META = """\
alias: quad
uid: 00000000000000b1
tags: [demo, quad]
description: A quadratic with a known optimum (x=5, kind=b), one dep.
version: "1"
run: run.py
inputs:
  x: {type: integer, minimum: 0, maximum: 8, default: 0}
  kind: {type: string, enum: [a, b, c], default: a}
  sleep_s: {type: number, minimum: 0, default: 0.0}
deps:
  - name: src
    tags: demo,gen
    inputs: {n: 2}
outputs:
  metrics:
    loss: {unit: "1", better: lower}
    cost: {unit: "1", better: lower}
resources:
  timeout_s: 120
"""
QUAD_PY = """\
import time


def run(ctx):
    time.sleep(ctx.inputs["sleep_s"])
    x, kind = ctx.inputs["x"], ctx.inputs["kind"]
    base = len(ctx.deps["src"].files["numbers"].read_text().split())  # 2: the dep is real
    loss = (x - 5) ** 2 + {"a": 3, "b": 0, "c": 1}[kind] + 0.0 * base
    return {"metrics": {"loss": float(loss), "cost": float(x)}}
"""
QUAD_EXP = """\
name: quad
description: known-optimum search target
script: demo,quad
grid:
  x: [0, 4]
  kind: [a, b]
repetitions: 2
"""
QUAD_OPT_EXP = """\
name: quad-yaml
script: demo,quad
grid:
  kind: [a, b]
search:
  x: "2..6"
optimize:
  objectives: ["loss:min"]
  constraints: ["cost<=4"]
  trials: 14
  sampler: tpe
  seed: 3
"""


def make_quad_repo(root: Path) -> Path:
    repo = make_tiny_repo(root)
    write(repo / "scripts/quad/meta.yaml", QUAD_META)
    write(repo / "scripts/quad/run.py", QUAD_PY)
    write(repo / "workflows/experiments/quad.yaml", QUAD_EXP)
    write(repo / "workflows/experiments/quad-yaml.yaml", QUAD_OPT_EXP)
    return repo
