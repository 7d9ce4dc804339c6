"""A small real playground for the site tests: edge-digits quick on the host runtime,
a reproduction of int8-ptq, two nightly runs, a second machine, and a tournament
ledger with example entries.

What is real: every number comes from the edge-digits scripts run by Snakemake here.
The second machine is this machine under another hostname (a UTS namespace,
`unshare -u`) running the benchmark anew (`--fresh`), imported with
`efflab results import`. The tournament's ledger entries are written through the real
ledger (organiser-signed, hash-chained, participants' keys registered and their
signatures stored) and judged with the tournament's real constraints, but their
metrics are the edge-digits run's measurements at the entries' inputs (its run records
copied as the entries' runs), not a sealed Docker re-run (that path is
`tests/tournaments/`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from efflab.core.clock import now_iso
from efflab.results import records
from efflab.tournaments import identity
from efflab.tournaments.organiser import tournament_ledger
from efflab.tournaments.spec import load_tournament
from efflab.tournaments.submission import load_submission, sha256_file

REPO = Path(__file__).resolve().parents[2]
SUITE = """\
name: site-nightly
defaults: {quick: true, repetitions: 3}
correction: holm
policy:
  default: {alpha: 0.05, min_effect: 0.10, baseline_runs: 5}
experiments:
  - name: edge-digits
    overrides: {model: mlp-1024}
    metrics: [latency_p50_us, accuracy]
"""
EXTRA_ENTRIES = {  # inputs-only entries at other grid points
    "mlp1024-int8-static.yaml": "participant: bo\nentry: mlp1024-int8-static\n"
    "inputs: {model: mlp-1024, precision: int8-static, threads: 1}\n",
    "mlp1024-int8-dynamic.yaml": "participant: cy\nentry: mlp1024-int8-dynamic\n"
    "inputs: {model: mlp-1024, precision: int8-dynamic, threads: 1}\n",
    "cnn64-fp32.yaml": "participant: di\nentry: cnn64-fp32\n"
    "inputs: {model: cnn-64, precision: fp32, threads: 1}\n",
}


def cli(repo: Path, *args: str, hostname: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "efflab", "--repo", str(repo), *args]
    if hostname:  # another machine's identity: its own hostname, same hardware
        cmd = ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    return p


def must(p: subprocess.CompletedProcess, ok=(0,)) -> subprocess.CompletedProcess:
    assert p.returncode in ok, f"{p.args}\n{p.stdout}\n{p.stderr}"
    return p


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflows" / "rules", root / "workflows" / "rules")
    shutil.copytree(REPO / "envs" / "ml-cpu", root / "envs" / "ml-cpu",
                    ignore=shutil.ignore_patterns("wheels"))  # fmt: skip
    for src in sorted((REPO / "scripts").glob("edge-*")):
        shutil.copytree(src, root / "scripts" / src.name)
    for lib in ("edge", "edgetour"):
        shutil.copytree(REPO / "scripts" / "_lib" / lib, root / "scripts" / "_lib" / lib)
    (root / "workflows" / "experiments").mkdir(parents=True)
    # -private: the tournament's base; -ptq: int8-ptq's (edge-digits + its control)
    for exp in ("edge-digits", "edge-digits-private", "edge-digits-ptq"):
        shutil.copy(REPO / f"workflows/experiments/{exp}.yaml", root / "workflows/experiments")
    (root / "workflows" / "papers").mkdir()
    shutil.copy(REPO / "workflows/papers/int8-ptq.yaml", root / "workflows/papers")
    (root / "workflows" / "tournaments").mkdir()
    shutil.copy(REPO / "workflows/tournaments/edge-digits.yaml", root / "workflows/tournaments")
    shutil.copytree(
        REPO / "workflows/tournaments/examples/edge-digits",
        root / "workflows/tournaments/examples/edge-digits",
    )
    (root / "nightly.yaml").write_text(SUITE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "p"],
        check=True,
    )
    return root


def ledger_from_runs(repo: Path) -> list[dict]:
    """Example entries judged on the edge-digits measurements (see module docstring)."""
    t = load_tournament(repo, "edge-digits")
    by_point: dict[tuple, dict[str, list[float]]] = {}
    keys_at: dict[tuple, list[str]] = {}
    runs = t.root(repo) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for rec in records.load(repo, "edge-digits"):
        pt = (rec.point.get("model"), rec.point.get("precision"))
        for m, v in rec.metric_values().items():
            by_point.setdefault(pt, {}).setdefault(m, []).append(v)
        keys_at.setdefault(pt, []).append(rec.key)
        shutil.copy(repo / "results/edge-digits/runs" / rec.file_name, runs)
    ex = repo / "workflows/tournaments/examples/edge-digits"
    for name, text in EXTRA_ENTRIES.items():
        (ex / name).write_text(text)
    files = [
        ex / "mlp1024-fp32.yaml",
        ex / "cnn64-int8-static.yaml",
        *(ex / n for n in EXTRA_ENTRIES),
    ]
    led = tournament_ledger(t.root(repo), t.id)
    reg = identity.Registry(t.root(repo) / "participants.json")
    keydir = repo.parent / "keys"
    keydir.mkdir(exist_ok=True)
    out = []
    for f in files:
        sub = load_submission(f, t.id, t.inputs_schema, t.metrics)
        if not (keydir / sub.participant).exists():
            reg.register(sub.participant, identity.generate(keydir / sub.participant).public_b64)
        priv = identity.load_private(keydir / sub.participant)
        stored = t.root(repo) / "submissions" / f"test-{f.stem}" / "submission.yaml"
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, stored)
        signed = identity.signed_fields(t.id, sha256_file(stored), None)
        pt = (sub.inputs["model"], sub.inputs["precision"])
        vals = by_point[pt]
        metrics = {o.metric: statistics.median(vals[o.metric]) for o in t.objectives}
        judged = [c for c in t.constraints if c.metric in vals]  # edge-digits has no agreement
        for c in judged:
            metrics.setdefault(c.metric, statistics.median(vals[c.metric]))
        broken = [c for c in judged if not c.holds(metrics[c.metric])]
        body = {
            "time": now_iso(),
            "tournament": t.id,
            "tournament_sha256": t.spec_sha256,
            "scoring_sha256": t.scoring_sha256,  # scored under the current spec: not stale
            "submission": {
                "id": f"test-{f.stem}",
                "participant": sub.participant,
                "entry": sub.entry,
                "key": identity.fingerprint(priv.public_key().public_bytes_raw()),
                "signature": identity.sign(priv, identity.message_bytes(signed)),
                "signed": signed,
                "file": str(stored.relative_to(t.root(repo))),
                "sha256": sha256_file(stored),
                "archive": None,
                "archive_sha256": None,
                "inputs": sub.inputs,
                "claimed": sub.claimed,
            },
            "verdict": "rejected" if broken else "accepted",
            "stage": "constraint" if broken else None,
            "reason": "; ".join(
                f"{c.metric} = {metrics[c.metric]:.4g}, needs {c.text()}" for c in broken
            )
            or None,
            "metrics": metrics,
            "repetitions": {m: vals[m] for m in metrics},
            "flags": [],
            "verification": {
                "runtime": "host (site test: measured by the edge-digits run)",
                "repetitions": len(vals[next(iter(metrics))]),
                "aggregate": "median",
                "keys": sorted(keys_at[pt]),
            },
        }
        out.append(led.append(body))
    return out


def build_playground(root: Path) -> dict:
    """Run everything; returns what the tests compare the site against."""
    repo = make_project(root / "lab-a")
    must(cli(repo, "run", "edge-digits", "--quick", "--runtime", "host", "--cores", "2"))
    must(cli(repo, "reproduce", "int8-ptq", "--quick", "--runtime", "host", "--cores", "2"), (0, 1))
    for _ in range(2):
        suite = str(repo / "nightly.yaml")
        must(cli(repo, "nightly", "--suite", suite, "--runtime", "host", "--cores", "2"), (0, 1))
    other = root / "lab-b"
    shutil.copytree(repo, other, ignore=shutil.ignore_patterns("results"))
    must(
        cli(
            other,
            "run",
            "edge-digits",
            "--quick",
            "--fresh",
            "--runtime",
            "host",
            "--cores",
            "2",
            hostname="lab-b",
        )  # fmt: skip
    )
    imported = must(cli(repo, "results", "import", str(other / "results"), "--json"))
    entries = ledger_from_runs(repo)
    return {"repo": repo, "other": other, "import": imported.stdout, "ledger": entries}
