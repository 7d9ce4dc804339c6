"""Helpers shared by the kill and concurrency tests: a tiny project whose every script
execution appends one line to its invocation's `exec.log` (so "each job ran once" is counted, not
assumed), background efflab runs, and a scan for processes left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import make_tiny_repo

COUNTING_GEN = """\
echo "gen $EFFLAB_IN_N $$" >> "$EFFLAB_OUT_DIR/../exec.log"
seq 1 "$EFFLAB_IN_N" > "$EFFLAB_OUT_DIR/numbers.txt"
echo "{\\"metrics\\": {\\"count\\": $EFFLAB_IN_N}, \\"files\\": {\\"numbers\\": \\"numbers.txt\\"}}" > "$EFFLAB_OUTPUTS"
"""
COUNTING_SQUARE = """\
import os
import time


def run(ctx):
    log = ctx.out_dir.parent / "exec.log"  # the invocation folder: writable in a container too
    with open(log, "a") as fh:
        fh.write(f"square {ctx.inputs['n']} {ctx.inputs['scale']} {os.getpid()}\\n")
    t0 = time.perf_counter()
    time.sleep(ctx.inputs["sleep_s"])
    nums = [int(x) for x in ctx.deps["src"].files["numbers"].read_text().split()]
    total = ctx.inputs["scale"] * sum(x * x for x in nums)
    return {"metrics": {"sumsq": total, "wall_s": time.perf_counter() - t0}}
"""
# quick demo: n in {2, 3} x scale in {1, 2}, one repetition -> sum of squares
EXPECTED_SUMSQ = {(2, 1.0): 5.0, (2, 2.0): 10.0, (3, 1.0): 14.0, (3, 2.0): 28.0}


def counting_repo(root: Path) -> Path:
    repo = make_tiny_repo(root)
    (repo / "scripts/gen/run.sh").write_text(COUNTING_GEN)
    (repo / "scripts/square/run.py").write_text(COUNTING_SQUARE)
    return repo


def executions(repo: Path) -> list[str]:
    """One entry per script execution so far ('gen 2', 'square 3 1.0'), every invocation."""
    out = []
    for f in sorted(repo.glob("artifacts/*/*/exec.log")):
        out += [" ".join(ln.split()[:-1]) for ln in f.read_text().splitlines()]
    return out


def start(repo: Path, *args: str, new_session: bool = True) -> subprocess.Popen:
    """`efflab --repo REPO ARGS` in the background (its own session: killable as a group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def processes_in(repo: Path) -> list[str]:
    """Live processes working inside `repo` (Snakemake, runners, scripts: their cwd is
    the repo or an invocation's out/ folder), as 'pid cmdline'."""
    found, root = [], str(repo.resolve())
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(d / "cwd")
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] == "Z":
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(f"{d.name} {cmd.strip()}")
    return found


def wait_until(cond, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    return cond()


def sumsq_table(repo: Path, exp: str = "demo") -> dict[tuple[int, float], tuple[int, float]]:
    """(n, scale) -> (n records, median sumsq) of the latest table version."""
    out = subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), "results", "table", exp,
         "--format", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    rows = [r for r in json.loads(out) if r["metric"] == "sumsq"]
    return {(r["param_n"], float(r["scale"])): (r["n"], r["median"]) for r in rows}
