"""The pipeline every view shares: plan -> engine -> records -> table version.

`efflab run`, `efflab reproduce`, `efflab nightly` and tournament verification all go
through `run_experiment`, so caching, provenance and tables behave the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from efflab.core.errors import RunFailed
from efflab.plan.planner import Plan, plan_experiment
from efflab.results import provenance, records, tables
from efflab.workflow import snakemake_adapter as engine
from efflab.workflow.options import RunOptions


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


def run_experiment(
    repo: Path,
    name: str,
    opts: RunOptions | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    run_id: str = "",
    salt: str = "",
    on_progress: Callable[[int, int], None] | None = None,
    prepared: Plan | None = None,
    save_table: bool = True,
) -> ExperimentResult:
    """`save_table=False`: records only, no table version (a caller such as `optimize`
    runs partial plans of the experiment and saves its own table)."""
    opts = opts or RunOptions()
    quick, dry_run, runtime = opts.quick, opts.dry_run, opts.runtime
    p = prepared or plan_experiment(repo, name, quick, overrides, salt)
    if not dry_run:
        runtime.prepare(repo, p.invocations.values())
    engine.write_invocations(repo, p.invocations.values())
    todo = [inv for inv in p.targets if not engine.is_done(repo, inv)]
    res = ExperimentResult(plan=p)
    if todo:
        res.engine = engine.run(
            repo,
            todo,
            cores=opts.cores,
            dry_run=dry_run,
            runtime=runtime.name,
            run_id=run_id,
            profile=opts.profile,
            on_progress=on_progress,
            on_cancel=runtime.cleanup,
        )
        res.jobs_run = res.engine.jobs_done
        if res.engine.cancelled:
            raise KeyboardInterrupt
        if dry_run:
            return res
    elif dry_run:
        return res
    prov = provenance.collect(repo)
    res.collected = records.collect(repo, p, run_id, prov, runtime.name)
    keys = {pt.key for pt in p.points}
    recs = [r for r in res.collected.ok if r["key"] in keys]
    res.table = tables.aggregate(recs, p.param_names(), p.experiment.metrics)
    if recs and save_table:
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
