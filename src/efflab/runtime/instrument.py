"""Deterministic work counts: a script run under `perf stat` or Valgrind's cachegrind.

Wall time on a shared machine needs many repetitions to show a 5 % change; counted
work needs one. A script (meta.yaml `resources.instrument`) or an experiment
(`instrument:`) asks for a tool, and its invocations run under it:

- `perf`: hardware counters (`perf stat -e instructions:u,cycles:u`, children
  included). `instructions` is declared noiseless; `cycles` follows the clock and the
  caches, so it stays a noisy metric. Needs readable counters (`efflab doctor --timing`):
  most VMs have none.
- `cachegrind`: Valgrind simulates the CPU (`--cache-sim=yes`, children traced):
  `instructions` (Ir), `d1_misses` and `ll_misses` (simulated first-level data and
  last-level misses) are the same on every run of the same code and input, so all
  three are noiseless. The cost is Valgrind's slow-down (about 50x for Python, plus
  ~2 s to start), so an instrumented experiment runs a reduced workload.
- `auto`: `perf` where counters are readable, else `cachegrind` (resolved when the
  plan is made: the key says which tool counted).

The counts cover the whole script process (the interpreter's start-up and imports
included): a constant for unchanged code, and real work when an import changes. A
Python script runs with PYTHONHASHSEED=0 so hashing does not vary the count. Stdlib
only: this runs in the job process.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from efflab.core.instruments import TOOLS
from efflab.runtime.failure import INFRASTRUCTURE, InvocationFailed

FOLDER = ".instrument"  # in the invocation folder, beside out/ (never a script output)


def tool_of(resources: dict[str, Any]) -> str | None:
    t = resources.get("instrument")
    return t if t in TOOLS else None


def prefix(tool: str, folder: Path) -> list[str]:
    """The command line the script's own command is appended to."""
    d = folder / FOLDER
    if tool == "perf":
        return ["perf", "stat", "-x", ",", "--no-big-num", "-e", "instructions:u,cycles:u",
                "-o", str(d / "perf.csv"), "--"]  # fmt: skip
    return [
        "valgrind", "--tool=cachegrind", "--cache-sim=yes", "--trace-children=yes",
        f"--cachegrind-out-file={d}/cg.%p.out", f"--log-file={d}/valgrind.%p.log",
    ]  # fmt: skip


def prepare(folder: Path, env: dict[str, str]) -> None:
    """A fresh counts folder; the variables that make a Python run's count repeatable."""
    d = folder / FOLDER
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    env["PYTHONHASHSEED"] = "0"


def precompile(dirs: list[str]) -> None:
    """Bytecode for every module the count may import from `dirs` (the script, its
    includes) and efflab, written before the counted process starts: a first run
    would otherwise count compiling them (+0.2 %) and later runs would not."""
    import compileall

    for d in [*dirs, str(Path(__file__).resolve().parents[1])]:
        try:
            compileall.compile_dir(d, quiet=2, workers=1)
        except OSError:  # a read-only tree: Python compiles in memory, every run alike
            pass


def python_command(folder: Path) -> list[str]:
    """A run.py script in a process of its own (the count must cover only it)."""
    return [sys.executable, "-m", "efflab.runtime.instrument", str(folder)]


def collect(tool: str, folder: Path) -> dict[str, float]:
    """The counts the tool left in the invocation folder."""
    d = folder / FOLDER
    try:
        got = _perf(d / "perf.csv") if tool == "perf" else _cachegrind(d)
    except (OSError, ValueError) as exc:
        raise InvocationFailed(INFRASTRUCTURE, f"instrument {tool}: no counts ({exc})") from None
    return got


def _perf(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        value, event = parts[0], parts[2].split(":")[0]
        if event not in ("instructions", "cycles"):
            continue
        if not value.replace(".", "").isdigit():
            raise ValueError(f"perf stat says {value} for {event} (counters unreadable here?)")
        out[event] = float(value)
    if "instructions" not in out:
        raise ValueError(f"no instructions line in {path}")
    return out


def _cachegrind(d: Path) -> dict[str, float]:
    totals: dict[str, int] = {}
    files = sorted(d.glob("cg.*.out"))
    if not files:
        raise ValueError(f"no cachegrind output in {d} (is valgrind installed?)")
    for f in files:
        events: list[str] = []
        for line in f.read_text().splitlines():
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                for name, v in zip(events, line.split()[1:], strict=False):
                    totals[name] = totals.get(name, 0) + int(v)
    if "Ir" not in totals:
        raise ValueError(f"no summary line in {d}/cg.*.out")
    return {
        "instructions": float(totals["Ir"]),
        "d1_misses": float(totals.get("D1mr", 0) + totals.get("D1mw", 0)),
        "ll_misses": float(totals.get("DLmr", 0) + totals.get("DLmw", 0)),
    }


def main(argv: list[str]) -> int:
    """`python -m efflab.runtime.instrument FOLDER`: run a run.py invocation's script
    in this process, as the host runtime's forked child would (counted from outside)."""
    import json

    from efflab.core.invocation import Invocation
    from efflab.runtime.host import _run_py
    from efflab.runtime.outputs import atomic_json

    folder = Path(argv[0])
    inv = Invocation.load(folder)
    deps = json.loads((folder / ".deps.json").read_text())
    sys.path[:0] = [inv.script_dir, *inv.include]
    atomic_json(folder / ".script-outputs.json", _run_py(inv, folder, deps))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m efflab.runtime.instrument FOLDER", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
