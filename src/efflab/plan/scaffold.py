"""Scaffolds: `efflab script new` (a script folder that validates as written, with a
test that runs it) and `efflab experiment new` (an experiment YAML from a script's
inputs). Files are written whole (temp + rename) and never over an existing one."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import yaml

from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_text
from efflab.plan.registry import Registry, Script, parse_script

ALIAS = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

RUN_PY = '''"""{description}"""

import time


def run(ctx):
    n = ctx.inputs["n"]
    with ctx.timer("work"):
        t0 = time.perf_counter()
        total = sum(i * i for i in range(n))
        elapsed = time.perf_counter() - t0
    ctx.log.info("sum of squares below %d = %d", n, total)
    return {{"metrics": {{"elapsed_s": elapsed}}, "values": {{"total": total}}}}
'''

RUN_SH = """#!/usr/bin/env bash
# {description}
# Inputs arrive as EFFLAB_IN_<NAME>; write outputs as JSON to $EFFLAB_OUTPUTS.
set -euo pipefail
start=$(date +%s%N)
total=0
for ((i = 0; i < EFFLAB_IN_N; i++)); do total=$((total + i * i)); done
end=$(date +%s%N)
elapsed=$(awk -v ns=$((end - start)) 'BEGIN {{ printf "%.9f", ns / 1e9 }}')
printf '{{"metrics": {{"elapsed_s": %s}}, "values": {{"total": %s}}}}\\n' "$elapsed" "$total" > "$EFFLAB_OUTPUTS"
"""

TEST = '''"""Runs the `{alias}` script on its defaults through the real pipeline."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[{depth}]


def test_{name}_runs_on_its_defaults() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(REPO), "script", "run", "{alias}",
         "--runtime", "host", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and out["metrics"]["elapsed_s"] >= 0
'''


def new_script(
    repo: Path, alias: str, tags: list[str], env: str | None = None, shell: bool = False
) -> tuple[Script, list[Path]]:
    """Write scripts/<alias>/ (meta.yaml, run.py or run.sh) and its test; returns the
    parsed script (so the scaffold is known to validate) and the files written."""
    if not ALIAS.match(alias):
        raise BadInput("ALIAS", "$", "an alias [a-z0-9][a-z0-9-]*", alias)
    bad = [t for t in tags if not TAG.match(t)]
    if not tags or bad:
        raise BadInput("--tags", "$", "comma-separated tags [a-z0-9][a-z0-9_.-]*", ",".join(tags))
    if alias in Registry.for_repo(repo).scripts:
        raise BadInput("ALIAS", "$", "an alias no script uses yet", alias)
    if env is not None and not (repo / "envs" / env / "Dockerfile").is_file():
        known = sorted(p.parent.name for p in (repo / "envs").glob("*/Dockerfile"))
        raise BadInput("--env", "$", f"an env under envs/ ({', '.join(known) or 'none'})", env)
    folder = repo / "scripts" / alias
    if folder.exists():
        raise BadInput(folder, "$", "a folder that does not exist yet", "exists")
    description = f"{alias}: describe what this script measures and why."
    meta = {
        "alias": alias,
        "uid": secrets.token_hex(8),
        "tags": tags,
        "description": description,
        "version": "0.1",
        **({"env": env} if env else {}),
        "run": "run.sh" if shell else "run.py",
        "inputs": {
            "n": {"type": "integer", "minimum": 1, "default": 100000, "description": "problem size"}
        },  # fmt: skip
        "outputs": {"metrics": {"elapsed_s": {"unit": "s", "better": "lower"}}},
        "resources": {"cpus": 1, "timeout_s": 600},
    }
    family = tags[0]
    test = repo / "tests" / "families" / family / f"test_{alias.replace('-', '_')}.py"
    written = [folder / "meta.yaml", folder / meta["run"], test]
    if test.exists():
        raise BadInput(test, "$", "a test file that does not exist yet", "exists")
    folder.mkdir(parents=True)
    try:
        atomic_write_text(folder / "meta.yaml", yaml.safe_dump(meta, sort_keys=False))
        body = (RUN_SH if shell else RUN_PY).format(description=description)
        atomic_write_text(folder / meta["run"], body)
        if shell:
            (folder / "run.sh").chmod(0o755)
        script = parse_script(folder)  # the scaffold validates as written, or nothing stays
        test.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(test, TEST.format(alias=alias, name=alias.replace("-", "_"), depth=3))
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        folder.rmdir() if folder.exists() and not any(folder.iterdir()) else None
        raise
    return script, written


def new_experiment(repo: Path, name: str, script: Script) -> Path:
    """workflows/experiments/<name>.yaml: the script's inputs with their defaults, a
    one-axis grid over the first numeric input, 3 repetitions and a quick block."""
    if not ALIAS.match(name):
        raise BadInput("NAME", "$", "an experiment name [a-z0-9][a-z0-9-]*", name)
    f = repo / "workflows" / "experiments" / f"{name}.yaml"
    if f.exists():
        raise BadInput(f, "$", "an experiment file that does not exist yet", "exists")
    numeric = [k for k, v in script.inputs.items() if v.get("type") in ("integer", "number")]
    grid = {}
    if numeric:
        d = script.inputs[numeric[0]]["default"]
        grid = {numeric[0]: [d, d * 2] if d else [d, 1]}
    data = {
        "name": name,
        "description": f"{script.description} (scaffolded from {script.alias})",
        "script": script.alias,
        "inputs": {k: v["default"] for k, v in script.inputs.items() if k not in grid},
        **({"grid": grid} if grid else {}),
        "repetitions": 3,
        "quick": {"repetitions": 3},
    }
    atomic_write_text(f, yaml.safe_dump(data, sort_keys=False))
    return f
