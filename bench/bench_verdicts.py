"""Stability of verdicts: `efflab reproduce --all --quick` three times from one clean
checkout — idle, idle again, and with a CPU hog busy on one core — printing each
claim's three verdicts and intervals and how many flip between reproduced and not
reproduced (goal: none; inconclusive under the hog is acceptable).

    python bench/bench_verdicts.py [--cores 2] [--papers ID ...] [--json out.json] [--keep DIR]

`--papers` runs only those papers (default: --all), for a smaller honest run when
three full reproductions do not fit; the printout names the papers it covered.
`--given idle-1=FILE:WALL_S:LOAD` takes an arm from a `reproduce --all --quick --json`
already run on a clean checkout (its output file, wall seconds and load average)
instead of running it again; the printout marks it as given.

Each run is a fresh `git clone` of HEAD (so no cached invocation carries over between
runs: every run measures); the clones use this interpreter's environment, so run
`./tools/setup.sh` first. The hog is `stress-ng --cpu 1` when installed, else a Python busy
loop pinned to no core in particular. Timings are whatever this machine gives: say
how loaded it was when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARMS = ("idle-1", "idle-2", "hog-1-core")


def start_hog() -> subprocess.Popen:
    if shutil.which("stress-ng"):
        cmd = ["stress-ng", "--cpu", "1", "--quiet"]
    else:
        cmd = [sys.executable, "-c", "while True: pass"]
    return subprocess.Popen(cmd, start_new_session=True)


def reproduce(clone: Path, cores: int, papers: list[str]) -> tuple[dict, float, int]:
    env = dict(os.environ, PYTHONPATH=str(clone / "src"))
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "efflab",
            "--repo",
            str(clone),
            "reproduce",
            *(papers or ["--all"]),
            "--quick",
            "--cores",
            str(cores),
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.monotonic() - t0
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError:
        sys.exit(f"reproduce printed no JSON (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return data, wall, r.returncode


def verdicts(data: dict) -> dict[str, dict]:
    return {
        f"{p['paper']}/{c['id']}": {
            "verdict": c["verdict"],
            "kind": c["kind"],
            "value": c["value"],
            "low": c["low"],
            "high": c["high"],
        }
        for p in data["papers"]
        for c in p["claims"]
    }


def fresh_clone(root: Path, name: str) -> Path:
    dst = root / name
    subprocess.run(["git", "clone", "-q", str(REPO), str(dst)], check=True)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--papers", nargs="+", default=[], help="paper ids (default: --all)")
    ap.add_argument("--json", type=Path, help="write all verdicts here")
    ap.add_argument("--keep", type=Path, help="clone into this folder and keep it")
    ap.add_argument("--given", action="append", default=[], metavar="ARM=FILE:WALL_S:LOAD",
                    help="an arm already run (reproduce --json output), not run again")  # fmt: skip
    a = ap.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench-verdicts-"))
    root.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for g in a.given:
        arm, _, rest = g.partition("=")
        file, wall_s, load = rest.rsplit(":", 2)
        if arm not in ARMS:
            ap.error(f"--given: arm must be one of {', '.join(ARMS)}, not {arm!r}")
        data = json.loads(Path(file).read_text())
        runs[arm] = {"given": file, "wall_s": float(wall_s), "load_1m_before": float(load),
                     "load_1m_after": float(load), "exit": 0 if data.get("ok") else 1,
                     "claims": verdicts(data)}  # fmt: skip
        print(f"{arm}: given ({file}), exit {runs[arm]['exit']}, {float(wall_s):.0f} s, "
              f"load(1m) {float(load):.2f}", flush=True)  # fmt: skip
    for arm in ARMS:
        if arm in runs:
            continue
        clone = fresh_clone(root, arm)
        load0 = os.getloadavg()[0]
        hog = start_hog() if arm.startswith("hog") else None
        try:
            data, wall, rc = reproduce(clone, a.cores, a.papers)
        finally:
            if hog is not None:
                os.killpg(hog.pid, signal.SIGTERM)
                hog.wait()
        load = os.getloadavg()[0]
        runs[arm] = {
            "load_1m_before": load0,
            "wall_s": round(wall, 1),
            "exit": rc,
            "load_1m_after": load,
            "claims": verdicts(data),
        }
        print(f"{arm}: exit {rc}, {wall:.0f} s, load(1m) before {load0:.2f} after {load:.2f}",
              flush=True)  # fmt: skip
    print(f"papers: {' '.join(a.papers) if a.papers else 'all'}; cores {a.cores}")
    ids = sorted(set().union(*(r["claims"] for r in runs.values())))
    flips = 0
    print(f"\n{'claim':<58} " + "  ".join(f"{arm:<34}" for arm in ARMS))
    for cid in ids:
        cells, seen = [], set()
        for arm in ARMS:
            c = runs[arm]["claims"].get(cid)
            if c is None:
                cells.append("—")
                continue
            iv = "" if c["low"] is None else f" [{c['low']:.3g}, {c['high']:.3g}]"
            cells.append(f"{c['verdict']}{iv}")
            if c["verdict"] in ("reproduced", "not reproduced"):
                seen.add(c["verdict"])
        flip = len(seen) > 1
        flips += flip
        kind = " (sanity)" if runs[ARMS[0]]["claims"].get(cid, {}).get("kind") == "sanity" else ""
        print(
            f"{(cid + kind)[:58]:<58} "
            + "  ".join(f"{x[:34]:<34}" for x in cells)
            + ("  FLIP" if flip else "")
        )
    print(f"\nclaims flipping between reproduced and not reproduced: {flips} of {len(ids)}")
    if a.json:
        a.json.write_text(json.dumps({"runs": runs, "flips": flips}, indent=2) + "\n")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if flips == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
