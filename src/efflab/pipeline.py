"""The pipeline every view shares: plan -> engine -> records -> table version.

`efflab run`, `efflab reproduce`, `efflab nightly` and tournament verification all go
through `run_experiment`, so caching, provenance and tables behave the same everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import engine, provenance, records, tables
from .errors import RunFailed
from .plan import Plan, Planner, load_experiment


@dataclass
class ExperimentResult:
    plan: Plan
    collected: records.Collected | None = None
    table: pd.DataFrame | None = None
    version: int | None = None
    new_version: bool = False
    jobs_run: int = 0
    engine: engine.EngineResult | None = None
    failures: list[str] = field(default_factory=list)


def resolve_runtime(requested: str, warn: Callable[[str], None] | None = None) -> str:
    """auto -> docker when an engine answers, else host (with a visible warning)."""
    if requested != "auto":
        return requested
    try:
        from .docker_runtime import engine_available
    except ImportError:
        return "host"
    if engine_available():
        return "docker"
    (warn or (lambda m: print(m, file=sys.stderr)))(
        "efflab: warning: no Docker engine answers; running on the host (runtime: host)"
    )
    return "host"


def plan(
    repo: Path,
    name: str,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    salt: str = "",
) -> Plan:
    return Planner(repo, salt=salt).plan(load_experiment(repo, name, quick, overrides))


def run_experiment(
    repo: Path,
    name: str,
    *,
    cores: int = 1,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    dry_run: bool = False,
    runtime: str = "host",
    run_id: str = "",
    salt: str = "",
    profile: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    prepared: Plan | None = None,
) -> ExperimentResult:
    p = prepared or plan(repo, name, quick, overrides, salt)
    if runtime == "docker" and not dry_run:
        from .docker_runtime import prepare_images

        prepare_images(repo, p.invocations.values())
    engine.write_invocations(repo, p.invocations.values())
    todo = [inv for inv in p.targets if not engine.is_done(repo, inv)]
    res = ExperimentResult(plan=p)
    if todo:
        res.engine = engine.run(
            repo,
            todo,
            cores=cores,
            dry_run=dry_run,
            runtime=runtime,
            run_id=run_id,
            profile=profile,
            on_progress=on_progress,
        )
        res.jobs_run = res.engine.jobs_done
        if res.engine.cancelled:
            raise KeyboardInterrupt
        if dry_run:
            return res
    elif dry_run:
        return res
    prov = provenance.collect(repo)
    res.collected = records.collect(repo, p, run_id, prov, runtime)
    keys = {pt.key for pt in p.points}
    recs = [r for r in res.collected.ok if r["key"] in keys]
    res.table = tables.aggregate(recs, p.param_names(), p.experiment.metrics)
    if recs:
        res.version, res.new_version = tables.save(
            repo,
            p.experiment.name,
            res.table,
            prov["git"]["commit"],
            {
                "run_id": run_id,
                "records": len(recs),
                "keys": sorted(keys),
                "git_dirty": prov["git"]["dirty"],
                "quick": quick,
            },
        )
    for rec in res.collected.failed:
        res.failures.append(
            f"{p.experiment.name} point {rec['point']} rep {rec['repetition']}: "
            f"{rec['failed_step']} failed: {rec['error']}"
        )
    if res.engine is not None and res.engine.returncode != 0 and not res.failures:
        raise RunFailed(f"Snakemake exited with {res.engine.returncode}; see {res.engine.log_file}")
    return res
