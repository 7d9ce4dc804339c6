"""Shared fixtures: a throwaway efflab project with tiny real scripts.

Tests run the real CLI against it, so Snakemake, the runner, records and tables all
run for real: `efflab_main` calls `efflab.cli.main(argv)` in this process (no
interpreter start, ~1 s saved per call) wherever a subprocess is not the point;
`efflab` starts `python -m efflab` where it is (signals, kills, process trees, a
fresh interpreter's imports).

Tiers: `./tools/test.sh --fast` (pytest `--fast`) deselects the tests marked
`docker`, `slurm` or `slow` (see pyproject.toml's markers and docs/contributing.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def add_family_lib(family: str) -> Path:
    """Put scripts/_lib/<family> on sys.path, as a script's `include:` does (one helper
    for every family's tests)."""
    lib = REPO / "scripts" / "_lib" / family
    if str(lib) not in sys.path:
        sys.path.insert(0, str(lib))
    return lib


GEN_META = """\
alias: gen
uid: 00000000000000a1
tags: [demo, gen]
description: Writes the numbers 1..n to a file (a run.sh script).
version: "1"
run: run.sh
inputs:
  n: {type: integer, default: 3, minimum: 1}
outputs:
  metrics:
    count: {unit: items, better: higher}
  files:
    numbers: {}
"""
GEN_SH = """\
seq 1 "$EFFLAB_IN_N" > "$EFFLAB_OUT_DIR/numbers.txt"
echo "{\\"metrics\\": {\\"count\\": $EFFLAB_IN_N}, \\"files\\": {\\"numbers\\": \\"numbers.txt\\"}}" > "$EFFLAB_OUTPUTS"
"""
SQUARE_META = """\
alias: square
uid: 00000000000000a2
tags: [demo, square]
description: Sums the squares of its dep's numbers (a run.py script with a dep).
version: "1"
run: run.py
inputs:
  n: {type: integer, default: 3, minimum: 1}
  scale: {type: number, default: 1.0}
  sleep_s: {type: number, default: 0.0, minimum: 0}
  fail: {type: boolean, default: false}
deps:
  - name: src
    tags: demo,gen
    inputs: {n: "{n}"}
outputs:
  metrics:
    sumsq: {unit: "1", better: lower}
    wall_s: {unit: s, better: lower}
resources:
  timeout_s: 60
"""
SQUARE_PY = """\
import time


def run(ctx):
    t0 = time.perf_counter()
    if ctx.inputs["fail"]:
        raise RuntimeError("asked to fail")
    time.sleep(ctx.inputs["sleep_s"])
    nums = [int(x) for x in ctx.deps["src"].files["numbers"].read_text().split()]
    ctx.log.info("got %d numbers", len(nums))
    total = ctx.inputs["scale"] * sum(x * x for x in nums)
    return {"metrics": {"sumsq": total, "wall_s": time.perf_counter() - t0}}
"""
DEMO_EXP = """\
name: demo
description: tiny two-step experiment used by the tests
script: demo,square
grid:
  n: [2, 3]
  scale: [1.0, 2.0]
repetitions: 2
quick: {repetitions: 1}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_tiny_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflows" / "rules", root / "workflows" / "rules")
    if (REPO / "workflows" / "profiles").is_dir():
        shutil.copytree(REPO / "workflows" / "profiles", root / "workflows" / "profiles")
    write(root / "scripts/gen/meta.yaml", GEN_META)
    write(root / "scripts/gen/run.sh", GEN_SH)
    write(root / "scripts/square/meta.yaml", SQUARE_META)
    write(root / "scripts/square/run.py", SQUARE_PY)
    write(root / "workflows/experiments/demo.yaml", DEMO_EXP)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """A fresh efflab project with scripts gen (run.sh) -> square (run.py), experiment demo."""
    return make_tiny_repo(tmp_path / "proj")


def efflab(
    repo: Path, *args: str, timeout: float = 600, env: dict | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real CLI against `repo` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("EFFLAB_SCRIPTS_PATH", None) if env is None else None
    proc = subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"efflab {args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def efflab_main(
    repo: Path, *args: str, timeout: float = 600, env: dict | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """`efflab` in this process, through `efflab.cli.main(argv)`: the same exit code,
    stdout and stderr text (what Python writes; a child process's own output is not
    captured). `timeout` is accepted for symmetry with `efflab` and not enforced."""
    from efflab.cli import main
    from efflab.core.envspec import context_digest
    from efflab.results.provenance import git_state

    # what a process caches about the project (env digests, git state) is per command
    context_digest.cache_clear()
    git_state.cache_clear()
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    if env is None:
        os.environ.pop("EFFLAB_SCRIPTS_PATH", None)
    else:
        os.environ.update(env)
    argv = ["--repo", str(repo), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    proc = subprocess.CompletedProcess(["efflab", *argv], code, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"efflab {args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


TIER_MARKERS = ("docker", "slurm", "slow")  # what `--fast` leaves out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"the fast tier: deselect tests marked {', '.join(TIER_MARKERS)}",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    slow = [i for i in items if any(i.get_closest_marker(m) for m in TIER_MARKERS)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        dropped = set(slow)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers: started with tools/ensure-docker.sh if needed, else
    the test is skipped with the reason (only where no engine can be started at all)."""
    import docker

    try:
        docker.from_env(timeout=60).ping()
        return
    except Exception:
        pass
    proc = subprocess.run([str(REPO / "tools/ensure-docker.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"no Docker engine could be started: {proc.stderr.strip()[-300:]}")


@pytest.fixture
def run_efflab():
    return efflab
