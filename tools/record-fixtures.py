"""Record a real `reproduce --all --quick` as test fixtures: per experiment run, the run
records its claims were judged on, with where and when they were measured.

    .venv/bin/python tools/record-fixtures.py REPO [--out tests/papers/recorded] [--papers ID ...]

REPO is the checkout a `reproduce --quick` ran in: its results/ holds the records and,
per paper, the reproduction's verdicts.json (the latest is used). Writes one
`<experiment>[--<overrides digest>].json` per distinct experiment run (its points,
parameters, whether it is timed, and each successful record's point, repetition,
metrics and contended flag) and `verdicts.json`: per paper, which reproduction and
which machine (CPU model and the features claims may require); per claim, the verdict,
value, interval, kind (sanity when by construction), every threshold's value and
source, and its control's and placebos' outcomes as the run reported them.
tests/papers/test_recorded.py evaluates every shipped claim on these tables and
expects exactly that: the claim language checked on real data for papers too slow to
run in CI, and a bar relaxed in a spec fails until the run is recorded again.

With --papers only those papers (and the experiments they need) are recorded again;
the other entries are kept as they are (each says where and when it was recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from efflab.core.specio import atomic_write_json, canonical_json  # noqa: E402
from efflab.papers.reproduce import prepare  # noqa: E402
from efflab.papers.samples import from_plan  # noqa: E402
from efflab.papers.spec import load_papers  # noqa: E402
from efflab.results import records  # noqa: E402


def fixture_name(name: str, overrides: dict) -> str:
    if not overrides:
        return name
    return f"{name}--{hashlib.sha256(canonical_json(overrides).encode()).hexdigest()[:8]}"


def recorded_claim(c: dict) -> dict:
    """What test_recorded.py asserts of one claim of a run's verdicts.json."""
    ctl = c.get("control")
    return {
        **{k: c[k] for k in ("verdict", "value", "low", "high")},
        "kind": c.get("kind", "claim"),
        "by_construction": c.get("by_construction"),
        "cites": c.get("cites"),
        "thresholds": [
            {"value": t["value"], "source": t["source"], "path": t["path"]}
            for t in c.get("thresholds") or []
        ],
        "control": None if ctl is None or "none" in ctl else ctl["outcome"],
        "placebos": [p["outcome"] for p in c.get("placebos") or []],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/papers/recorded")
    ap.add_argument("--papers", nargs="+", default=None, help="re-record only these papers")
    a = ap.parse_args()
    papers = load_papers(a.repo, a.papers or [], not a.papers)
    runs, _ = prepare(a.repo, papers, True)
    a.out.mkdir(parents=True, exist_ok=True)
    for r in runs:
        keys = {pt.key for pt in r.plan.points}
        recs = [x for x in records.load(a.repo, r.name, keys) if x.ok]
        by_key = {pt.key: pt.params for pt in r.plan.points}
        s = from_plan(r.plan, recs)
        prov = recs[0].provenance if recs else {}
        atomic_write_json(
            a.out / f"{fixture_name(r.name, r.overrides)}.json",
            {
                "experiment": r.name,
                "overrides": r.overrides,
                "recorded": {
                    "git_commit": prov.get("git", {}).get("commit"),
                    "host": prov.get("host", {}).get("hostname"),
                    "cpu_model": prov.get("host", {}).get("cpu_model"),
                    "cores": prov.get("host", {}).get("cores"),
                    "runtime": prov.get("runtime"),
                    "started": min((x.started or "" for x in recs), default=""),
                    "quick": True,
                },
                "params": s.params,
                "points": s.points,
                "timing": s.timing,
                "records": sorted(
                    (
                        {
                            "point": by_key[x.key],
                            "repetition": x.repetition,
                            "contended": bool(x.contended),
                            "metrics": {
                                k: {"value": m.value, "unit": m.unit}
                                for k, m in x.metrics.items()
                                if isinstance(m.value, int | float)
                            },
                        }
                        for x in recs
                    ),
                    key=canonical_json,
                ),
            },
        )
    old = a.out / "verdicts.json"
    kept = json.loads(old.read_text()) if a.papers and old.is_file() else {}
    verdicts = dict(kept.get("claims") or {})
    sources = dict(kept.get("papers") or {})
    for paper in papers:
        verdicts = {k: v for k, v in verdicts.items() if not k.startswith(f"{paper.id}/")}
        runs_dir = a.repo / "results/reproductions" / paper.id
        latest = max((int(d.name) for d in runs_dir.iterdir() if d.name.isdigit()), default=None)
        if latest is None:
            sys.exit(f"record-fixtures: {paper.id} was never reproduced in {a.repo}")
        v = json.loads((runs_dir / str(latest) / "verdicts.json").read_text())
        if not v.get("quick"):
            sys.exit(f"record-fixtures: {runs_dir / str(latest)} is not a --quick run")
        m = v.get("machine") or {}
        sources[paper.id] = {
            "reproduction": f"{paper.id}/{latest}",
            "started": v.get("started"),
            "cpu_model": m.get("cpu_model"),
            "cpu_features": m.get("cpu_features"),
            "usable_cores": m.get("usable_cores"),
        }
        for c in v["claims"]:
            verdicts[f"{paper.id}/{c['id']}"] = recorded_claim(c)
    atomic_write_json(a.out / "verdicts.json", {"papers": sources, "claims": verdicts})
    print(f"recorded {len(runs)} experiment runs and {len(verdicts)} verdicts in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
