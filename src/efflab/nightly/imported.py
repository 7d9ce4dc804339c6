"""Another tool's history as efflab nights: MLPerf result snapshots and asv results.

A CI that re-ran a benchmark for a year left one result per commit: a git repository
of successive MLPerf submissions, a folder of dated `mlperf_log_summary.txt` snapshots
(`<system>/<benchmark>/<scenario>/<date>_<commit>.txt`), or an asv results folder.
Each commit becomes one night of `results/nightly/history.jsonl` (nights that measured
the same commit are one night), each measurement a run record of the experiment
(`mlperf-<benchmark>-<scenario>`, `asv-<project>`) in its own `runs/`, where the
nightly's readers find them. So `efflab nightly`'s baselines, its change-point
detection (`efflab.nightly.changepoints`: Apache Otava's E-divisive means, spikes
shorter than `min_segment` nights are not shifts), the dashboard and the site's trend
plots work on the foreign history as on the project's own.

On import, every imported series (experiment, point, result metric) is analysed over
its whole history; the change points are stored in the series' last night (as a
nightly stores them) and returned with their dates and commit ranges. The last night
gets a dashboard (`results/nightly/<n>/`), judged against its baseline like a night.
Nights already imported (same record keys) are skipped, so importing again adds only
what is new. Everything is parsed before anything is written.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from efflab.core.errors import BadInput
from efflab.core.layout import nightly_dir
from efflab.core.specio import atomic_write_json
from efflab.nightly import changepoints as cpm
from efflab.nightly import history as hist
from efflab.nightly import regression as regress
from efflab.nightly.findings import ExperimentOutcome, Night
from efflab.results import tables
from efflab.results.formats import loadgen, mlperf
from efflab.results.formats.foreign import SMALL, Tree
from efflab.results.formats.ingest import Ingested, content_key, plan_records, record
from efflab.results.records import runs_dir

SNAPSHOT = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})_([0-9a-f]{7,40})\.txt$")
SUMMARY_PATH = re.compile(
    r"(?:^|/)(?:(closed|open|network)/([^/]+)/)?results/([^/]+)/([^/]+)/([^/]+)/performance/"
    r"run_1/mlperf_log_summary\.txt$"
)
HISTORY_EXPECTED = (
    "a history of MLPerf results: <system>/<benchmark>/<scenario>/<YYYY-MM-DDTHHMMSS>_<commit>"
    ".txt summaries, or a git repository of successive submission trees"
)


@dataclass
class Snapshot:
    """One measurement of one series at one commit."""

    experiment: str
    point: dict[str, Any]
    date: str  # ISO 8601 UTC
    commit: str
    metrics: dict[str, dict[str, Any]]
    values: dict[str, Any]
    where: str  # the file (or commit:path) it came from
    host: dict[str, Any]
    alias: str
    result_metrics: list[str]  # the metrics analysed for change points
    started: str | None = None
    python: str = ""
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def series(self) -> str:
        return hist.point_label(self.point)


def is_history(path: Path) -> bool:
    """A git repository, or a folder holding `<date>_<commit>.txt` snapshots."""
    tree = Tree(path, f"{mlperf.EXPECTED[:-1]}; or {HISTORY_EXPECTED})")
    if tree.exists(tree.root / ".git"):
        return True
    stack, depth = [(tree.root, 0)], 0
    while stack:
        d, depth = stack.pop()
        for p in tree.entries(d):
            if p.is_dir() and depth < 4 and not p.name.startswith("."):
                stack.append((p, depth + 1))
            elif SNAPSHOT.match(p.name):
                return True
    return False


# --- MLPerf snapshots ---------------------------------------------------------------


def _snapshot(run: loadgen.LoadGenRun, *, system: str, benchmark: str, scenario: str,
              date: str, commit: str, where: str, submitter: str = "") -> Snapshot:  # fmt: skip
    metrics = mlperf.run_metrics(run, None)
    heads = [run.headline] if run.headline else []
    heads += [m for m in metrics if m.endswith("tokens_per_s") and m not in heads]
    return Snapshot(
        experiment=mlperf.experiment_name(benchmark, scenario),
        point={"system": system},
        date=date,
        commit=commit,
        metrics=metrics,
        values=mlperf.run_values(run),
        where=where,
        host={
            # one label for the whole history (the site names a source by its records'
            # host); the system is the point
            "hostname": f"mlperf-history:{submitter}" if submitter else "mlperf-history",
            "cpu_model": "",
            "cores": 0,
            "memory_gb": 0.0,
            "os": "",
        },  # fmt: skip
        alias="mlperf-history",
        result_metrics=heads,
        started=run.test_datetime or date,
    )


def mlperf_snapshots_from_folder(path: Path, on_progress: Callable[[str], None] | None = None) -> list[Snapshot]:  # fmt: skip
    tree = Tree(path, HISTORY_EXPECTED)
    out = []
    for f in tree.walk():
        m = SNAPSHOT.match(f.name)
        if not m:
            continue
        parts = f.relative_to(tree.root).parts
        if len(parts) < 4:
            raise BadInput(
                f, "$", "<system>/<benchmark>/<scenario>/<date>_<commit>.txt", "/".join(parts)
            )
        system, benchmark, scen = parts[-4], parts[-3], parts[-2]
        scenario = mlperf.scenario_name(scen, f.parent)
        run = loadgen.parse_run(tree.read_text(f, SMALL), f)
        if run.scenario != scenario:
            raise BadInput(f, "$.Scenario", f"{scenario} (its folder)", run.scenario)
        date = f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4)}Z"
        out.append(_snapshot(run, system=system, benchmark=benchmark, scenario=scenario,
                             date=date, commit=m.group(5), where=str(f)))  # fmt: skip
        if on_progress and len(out) % 250 == 0:
            on_progress(f"read {len(out)} snapshots")
    if not out:
        raise BadInput(tree.root, "$", HISTORY_EXPECTED, "no snapshot file")
    return out


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=300)
    if proc.returncode != 0:
        raise BadInput(repo, "$", "a readable git repository",
                       proc.stderr.decode(errors="replace").strip()[-200:])  # fmt: skip
    return proc.stdout if binary else proc.stdout.decode(errors="replace")


def mlperf_snapshots_from_git(path: Path, on_progress: Callable[[str], None] | None = None) -> list[Snapshot]:  # fmt: skip
    """Each first-parent commit that changed a run_1 summary: one snapshot per summary.
    Git objects are read with `git show` (never checked out: no symlink is followed)."""
    repo = Path(path).resolve()
    log = _git(repo, "log", "--first-parent", "--reverse", "--format=%H %cI")
    cap = SMALL
    out = []
    for line in log.splitlines():
        commit, date = line.split(" ", 1)
        changed = _git(repo, "diff-tree", "-r", "--root", "--no-commit-id", "--name-only",
                       "--no-renames", "-z", commit).split("\0")  # fmt: skip
        for rel in changed:
            m = SUMMARY_PATH.search(rel)
            if not m:
                continue
            where = f"{repo}@{commit[:10]}:{rel}"
            listing = _git(repo, "ls-tree", "-l", commit, "--", rel).split()
            if not listing:
                continue  # deleted in this commit
            if listing[0] != "100644" and listing[0] != "100755":
                raise BadInput(
                    where,
                    "$",
                    "a regular file",
                    f"git mode {listing[0]} (a symbolic link or submodule)",
                )
            size = int(listing[3]) if listing[3].isdigit() else 0
            if size > cap:
                raise BadInput(where, "$", f"a summary of at most {cap} bytes", f"{size} bytes")
            text = _git(repo, "show", f"{commit}:{rel}", binary=True).decode(
                "utf-8", errors="strict"
            )
            division, submitter, system, benchmark, scen = m.groups()
            scenario = mlperf.scenario_name(scen, Path(where))
            run = loadgen.parse_run(text, Path(where))
            iso = datetime.fromisoformat(date).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            snap = _snapshot(run, system=system, benchmark=benchmark, scenario=scenario,
                             date=iso, commit=commit, where=where, submitter=submitter or "")  # fmt: skip
            out.append(snap)
        if on_progress and out and len(out) % 250 == 0:
            on_progress(f"read {len(out)} snapshots")
    if not out:
        raise BadInput(
            repo, "$", HISTORY_EXPECTED, "no commit changing a run_1 mlperf_log_summary.txt"
        )
    return out


def import_mlperf_history(repo: Path, path: Path, on_progress: Callable[[str], None] | None = None) -> Ingested:  # fmt: skip
    tree = Tree(path, HISTORY_EXPECTED)
    if tree.exists(tree.root / ".git"):
        snaps = mlperf_snapshots_from_git(tree.root, on_progress)
    else:
        snaps = mlperf_snapshots_from_folder(tree.root, on_progress)
    return import_history(repo, snaps, str(tree.root), "mlperf", "mlperf-history", on_progress)


# --- asv ------------------------------------------------------------------------------


def import_asv(repo: Path, path: Path, on_progress: Callable[[str], None] | None = None) -> Ingested:  # fmt: skip
    from efflab.results.formats import asv

    res = asv.read_results(path)
    snaps = [
        Snapshot(
            experiment=m.experiment,
            point=m.point,
            date=m.date,
            commit=m.commit,
            metrics={m.metric: {"value": m.value, "unit": m.unit, "better": "lower"}},
            values={"asv": m.values},
            where=m.file,
            host=m.host,
            alias="asv",
            result_metrics=[m.metric],
            started=m.started,
            python=m.python,
            packages=m.packages,
        )  # fmt: skip
        for m in res.measurements
    ]
    return import_history(repo, snaps, str(res.root), "asv", f"asv-{res.machine}", on_progress)


# --- writing -----------------------------------------------------------------------------


def _records(snaps: list[Snapshot], source: str, fmt: str) -> list[tuple[Snapshot, dict[str, Any]]]:
    out = []
    seen: dict[str, Snapshot] = {}
    for s in snaps:
        key = content_key({"format": fmt, "experiment": s.experiment, "point": s.point,
                           "commit": s.commit, "date": s.date, "metrics": s.metrics})  # fmt: skip
        if key in seen:  # the same numbers at the same commit twice: one record
            continue
        seen[key] = s
        rec = record(experiment=s.experiment, key=key, alias=s.alias, point=s.point,
                     repetition=0, metrics=s.metrics, run_id=f"import-{fmt}-{s.commit[:10]}",
                     started=s.started, host=s.host,
                     imported={"format": fmt, "source": source, "files": {"result": s.where},
                               "commit": s.commit, "date": s.date},
                     values=s.values, git={"commit": s.commit, "dirty": False},
                     python=s.python, packages=s.packages)  # fmt: skip
        out.append((s, rec))
    return out


def import_history(repo: Path, snaps: list[Snapshot], source: str, fmt: str, host: str,
                   on_progress: Callable[[str], None] | None = None) -> Ingested:  # fmt: skip
    res = Ingested(source=source, format=fmt, host=host)
    pairs = _records(snaps, source, fmt)
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for _s, rec in pairs:
        by_exp.setdefault(rec["experiment"], []).append(rec)
    todo, res.records_unchanged = plan_records(by_exp, {e: runs_dir(repo, e) for e in by_exp})
    nightly_dir(repo).mkdir(parents=True, exist_ok=True)
    lock = hist.nightly_lock(repo, "nightly import")
    try:
        history = hist.read_history(repo)
        known = {
            k
            for h in history
            for e in (h.get("experiments") or {}).values()
            for k in e.get("keys") or []
        }
        nights: dict[tuple[str, str], list[tuple[Snapshot, dict[str, Any]]]] = {}
        for s, rec in pairs:
            if rec["key"] not in known:
                nights.setdefault((s.date, s.commit), []).append((s, rec))
        # one night per commit, dated by its first snapshot
        by_commit: dict[str, list[tuple[Snapshot, dict[str, Any]]]] = {}
        for (_d, c), items in sorted(nights.items()):
            by_commit.setdefault(c, []).extend(items)
        order = sorted(by_commit.items(), key=lambda kv: min(s.date for s, _ in kv[1]))
        for target, rec in todo:
            atomic_write_json(target, rec)
            res.records_added += 1
        for exp, recs in by_exp.items():
            res.experiments[exp] = {"records": len(recs),
                                    "points": len({hist.point_label(r["point"]) for r in recs})}  # fmt: skip
        if not order:
            return res
        n0 = (history[-1]["night"] + 1) if history else 1
        entries = []
        for i, (commit, items) in enumerate(order):
            date = min(s.date for s, _ in items)
            exps: dict[str, Any] = {}
            for _s, rec in items:
                e = exps.setdefault(
                    rec["experiment"],
                    asdict(ExperimentOutcome()) | {"flagged": [], "change_points": []},
                )
                e["keys"].append(rec["key"])
            entries.append({"night": n0 + i, "run_id": f"import-{fmt}-{commit[:10]}", "started": date,
                            "ended": date, "suite": f"import:{fmt}", "git": {"commit": commit, "dirty": False},
                            "exit_code": 0, "strict": False, "experiments": exps,
                            "imported": {"format": fmt, "source": source, "date": date}})  # fmt: skip
            res.nights.append({"night": n0 + i, "date": date, "commit": commit,
                               "experiments": sorted(exps)})  # fmt: skip
        full = [*history, *entries]
        cps = _change_points(repo, full, pairs, entries)
        for cp, entry in cps:
            e = entry["experiments"][cp.experiment]
            e["change_points"].append({k: v for k, v in asdict(cp).items() if k != "experiment"})
            res.change_points.append(_cp_json(cp, full))
        _save_tables(repo, pairs, res)
        hist.write_history(repo, full)
        if on_progress:
            on_progress(
                f"{len(entries)} nights appended; drawing the dashboard of night #{entries[-1]['night']}"
            )
        heads = {(rec["experiment"], m) for s, rec in pairs for m in s.result_metrics}
        _dashboard(repo, full, entries[-1], [c for c, _ in cps], heads)
        return res
    finally:
        lock.release()


def _series(full: list[dict[str, Any]], pairs) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(experiment, group, metric) -> nights, commits, nightly medians, meta."""
    by_key = {rec["key"]: (s, rec) for s, rec in pairs}
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in full:
        for exp, e in (entry.get("experiments") or {}).items():
            vals: dict[tuple[str, str], list[float]] = {}
            meta: dict[tuple[str, str], tuple[Snapshot, dict[str, Any]]] = {}
            for k in e.get("keys") or []:
                if k not in by_key:
                    continue
                s, rec = by_key[k]
                g = hist.group_of(rec)
                for m in s.result_metrics:
                    if m in rec["metrics"]:
                        vals.setdefault((g, m), []).append(float(rec["metrics"][m]["value"]))
                        meta[(g, m)] = (s, rec)
            for (g, m), vs in vals.items():
                ser = out.setdefault((exp, g, m), {"nights": [], "commits": [], "values": [],
                                                   "dates": [], "meta": meta[(g, m)]})  # fmt: skip
                ser["nights"].append(entry["night"])
                ser["commits"].append((entry.get("git") or {}).get("commit"))
                ser["values"].append(float(np.median(vs)))
                ser["dates"].append(entry.get("started"))
    return out


def _change_points(
    repo: Path, full, pairs, entries
) -> list[tuple[cpm.ChangePoint, dict[str, Any]]]:
    """Change points of every imported series over its whole history, each paired with
    the series' last night entry (where a nightly would have stored it)."""
    cfg = cpm.Settings()
    pol = regress.Policy()
    new_nights = {e["night"]: e for e in entries}
    out = []
    for (exp, g, m), ser in sorted(_series(full, pairs).items()):
        last = ser["nights"][-1]
        if last not in new_nights:
            continue  # nothing new in this series
        s, rec = ser["meta"]
        better = rec["metrics"][m]["better"]
        for f in cpm.analyse(
            ser["nights"], ser["commits"], ser["values"], better, pol.min_effect, cfg
        ):
            cp = cpm.ChangePoint(experiment=exp, point=rec["point"], group=g, metric=m,
                                 unit=rec["metrics"][m]["unit"], better=better, **f)  # fmt: skip
            out.append((cp, new_nights[last]))
    return out


def _cp_json(cp: cpm.ChangePoint, full: list[dict[str, Any]]) -> dict[str, Any]:
    date = {h["night"]: h.get("started") for h in full}
    return {"experiment": cp.experiment, "series": hist.point_label(cp.point), "metric": cp.metric,
            "unit": cp.unit, "night": cp.night, "previous_night": cp.previous_night,
            "date": date.get(cp.night), "previous_date": date.get(cp.previous_night),
            "commits": cp.commits, "commit_before": cp.commit_before, "commit_at": cp.commit_at,
            "mean_before": cp.mean_before, "mean_after": cp.mean_after, "change": cp.change,
            "p_value": cp.p_value, "direction": cp.direction, "open": cp.open}  # fmt: skip


def _save_tables(repo: Path, pairs, res: Ingested) -> None:
    """A table version per experiment: each series' latest snapshot (its current level)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for _s, rec in sorted(pairs, key=lambda p: p[0].date):
        latest[(rec["experiment"], hist.point_label(rec["point"]))] = rec
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for (exp, _), rec in latest.items():
        by_exp.setdefault(exp, []).append(rec)
    for exp, recs in by_exp.items():
        params = list(dict.fromkeys(k for r in recs for k in r["point"]))
        df = tables.aggregate(recs, params)
        commit = max(recs, key=lambda r: r["started"] or "")["provenance"]["git"]["commit"]
        v, new = tables.save(repo, exp, df, commit, {"keys": sorted(r["key"] for r in recs),
                                                     "source": res.source, "format": res.format})  # fmt: skip
        res.tables_added += int(new)
        res.experiments.setdefault(exp, {})["table_version"] = v


def _dashboard(repo: Path, full, entry: dict[str, Any], cps: list[cpm.ChangePoint],
               heads: set[tuple[str, str]]) -> None:  # fmt: skip
    """The last imported night's dashboard: its records judged against their baselines
    (as `efflab nightly` judges a night), with every imported series' change points."""
    from efflab.nightly import dashboard
    from efflab.nightly.night import assess, judge

    night = Night(night=entry["night"], run_id=entry["run_id"], started=entry["started"],
                  suite=entry["suite"], correction="holm", git=entry["git"], ended=entry["ended"])  # fmt: skip
    past = [h for h in full if h["night"] < entry["night"]]
    parts = []
    for exp, e in entry["experiments"].items():
        night.experiments[exp] = ExperimentOutcome(keys=list(e["keys"]))
        current = hist.load_night_records(repo, exp, e["keys"])
        metrics = sorted({m for r in current for m in r["metrics"] if (exp, m) in heads})
        base = hist.baselines(repo, past, exp, current, lambda _m: regress.Policy().baseline_runs)
        shifts, pols, ctx = assess(current, base, metrics, lambda _m: regress.Policy())
        parts.append((exp, shifts, pols, ctx))
    judge(night, parts)
    night.change_points = cps
    night.dashboard = f"results/nightly/{night.night}/index.html"
    dashboard.write(repo, night)
