"""The pipeline every view shares: plan -> engine -> records -> table version.

`efflab run`, `efflab reproduce`, `efflab nightly` and tournament verification all go
through `run_experiment`, so caching, provenance and tables behave the same everywhere.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efflab.core import machine
from efflab.core.errors import BadInput, RunFailed
from efflab.core.invocation import Invocation
from efflab.plan import collections
from efflab.plan.planner import Plan, plan_experiment
from efflab.results import provenance, records, tables
from efflab.workflow import housekeeping
from efflab.workflow import snakemake_adapter as engine
from efflab.workflow.options import RunOptions

if TYPE_CHECKING:
    import pandas as pd

# What a run needs only after its jobs: pandas, pyarrow and scipy.special (aggregation,
# the columnar index), GitPython (provenance). A local run imports them in a thread
# while it waits for Snakemake, not before: together ~1-2 s of a small run's start.
AFTER_JOBS = ("efflab.results.index", "scipy.special", "git")


def _import_after_jobs() -> None:
    for name in AFTER_JOBS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the main thread's own import reports it
            return


def preload_after_jobs() -> threading.Thread:
    t = threading.Thread(target=_import_after_jobs, name="efflab-preload", daemon=True)
    t.start()
    return t


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


# Snakemake's job selection and bookkeeping grow with the ready jobs: plain Snakemake
# (--scheduler greedy, 2 cores, load ~15) ran 1,000 trivial jobs at ~0.11 s each but
# 10,000 at ~1.1 s each (bench/bench_scale.py). So a wave of more targets than this
# is run as several Snakemake runs of at most this many (a start-up of a few seconds
# each); EFFLAB_MAX_TARGETS changes it, 0 = no limit.
MAX_TARGETS = 1000


def max_targets() -> int:
    raw = os.environ.get("EFFLAB_MAX_TARGETS", "").strip()
    if not raw:
        return MAX_TARGETS
    if not raw.isdigit():
        raise BadInput("$EFFLAB_MAX_TARGETS", "$", "a whole number (0: no limit)", raw)
    return int(raw)


def waves(todo: list[Invocation], limit: int | None = None) -> list[list[Invocation]]:
    """Targets in repetition order, as Snakemake runs of at most `limit` (default
    `max_targets()`) targets each: one run when they fit.

    Within a run, repetition r of every point starts before repetition r+1 of any: the
    rule's priority (workflows/rules/efflab.smk) says so to Snakemake's job selector,
    so slow drift in the machine's load hits every arm of a comparison alike. (This was
    one Snakemake run per repetition: a start-up and shut-down of ~2 s each.)"""
    limit = max_targets() if limit is None else limit
    ordered = sorted(todo, key=lambda inv: inv.repetition)  # stable: plan order within
    step = limit or len(ordered) or 1
    return [ordered[i : i + step] for i in range(0, len(ordered), step)]


def run_waves(
    repo: Path,
    todo: list[Invocation],
    on_progress: Callable[[int, int], None] | None = None,
    **kw: Any,
) -> engine.EngineResult:
    """One Snakemake run per wave (efflab.workflow.pipeline.waves); results summed."""
    total: engine.EngineResult | None = None
    done = 0
    for wave in waves(todo):

        def progress(d: int, t: int, base: int = done) -> None:
            if on_progress:
                on_progress(base + d, base + t)

        r = engine.run(repo, wave, on_progress=progress, **kw)
        done += r.jobs_done
        if total is None:
            total = r
        else:
            total.returncode = total.returncode or r.returncode
            total.jobs_done += r.jobs_done
            total.jobs_total += r.jobs_total
            total.failed_outputs += r.failed_outputs
            total.log_file = r.log_file
        if r.cancelled:
            total.cancelled = True
            break
    assert total is not None
    return total


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
    identity = opts.runtime.identity()
    p = prepared or plan_experiment(repo, name, opts.quick, overrides, salt, identity)
    if p.runtime != identity:  # its keys name another runtime's (or machine's) results
        raise ValueError(
            f"{p.experiment.name}: planned for {p.runtime}, asked to run on {identity}; "
            "plan with Planner(runtime=opts.runtime.identity())"
        )
    # one run of an experiment at a time: the second waits, then finds it all cached
    lock = housekeeping.experiment_lock(repo, p.experiment.name, run_id, opts.wait)
    try:
        if not opts.dry_run:
            housekeeping.sweep(repo, p.experiment.name, p.invocations.values())
            tables.latest_manifest(repo, p.experiment.name)  # a corrupt one: exit 2 now
        return _run_locked(repo, p, opts, run_id, on_progress, save_table)
    finally:
        lock.release()


def _run_locked(
    repo: Path,
    p: Plan,
    opts: RunOptions,
    run_id: str,
    on_progress: Callable[[int, int], None] | None,
    save_table: bool = True,
) -> ExperimentResult:
    quick, dry_run, runtime = opts.quick, opts.dry_run, opts.runtime
    if not dry_run:  # an untrusted collection's code runs in a container or not at all
        pending = [inv for inv in p.invocations.values() if not engine.is_done(repo, inv)]
        collections.refuse_unsandboxed(repo, pending, runtime.name)
        runtime.prepare(repo, p.invocations.values())
    engine.write_invocations(repo, p.invocations.values())
    todo = [inv for inv in p.targets if not engine.is_done(repo, inv)]
    res = ExperimentResult(plan=p)
    preload = None
    if todo and not dry_run and opts.waiter is not None:
        if any(inv.resources.get("exclusive") for inv in todo):
            opts.waiter()  # timings taken beside others' work are suspect: wait (bounded)
    seen = machine.state()  # before any job: the load the run started on
    if todo:
        if not dry_run:
            preload = preload_after_jobs()
        res.engine = run_waves(
            repo,
            todo,
            cores=opts.cores,
            dry_run=dry_run,
            runtime=runtime.name,
            run_id=run_id,
            profile=opts.profile,
            batch_seconds=opts.batch_seconds,
            on_progress=on_progress,
            on_cancel=runtime.cleanup,
        )
        if not dry_run and not res.engine.cancelled:  # a cancel already cleaned up
            runtime.cleanup(run_id)  # what the run kept warm (reused containers) ends with it
        res.jobs_run = res.engine.jobs_done
        if res.engine.cancelled:
            raise KeyboardInterrupt
        if dry_run:
            return res
    elif dry_run:
        return res
    if preload is not None:  # one importer at a time from here: no import-lock cycles
        preload.join()
    from efflab.results import index

    prov = {**provenance.collect(repo, seen), "runtime_info": runtime.provenance()}
    res.collected = records.collect(repo, p, run_id, prov)
    index.append(repo, p.experiment.name, res.collected.ok)  # the columnar index grows
    keys = {pt.key for pt in p.points}
    recs = [r for r in res.collected.ok if r.key in keys]
    res.table = tables.aggregate(recs, p.param_names(), p.experiment.metrics)
    if recs and save_table and not res.collected.failed:  # only complete data, when asked
        res.version, res.new_version = tables.save(
            repo,
            p.experiment.name,
            res.table,
            prov["git"]["commit"],
            {
                "run_id": run_id,
                "records": len(recs),
                "keys": sorted(keys),
                "git_dirty": prov["git"]["dirty"]
                or any(r.provenance["git"].get("dirty") for r in recs),
                "git_dirty_files": sorted(
                    {f for r in recs for f in r.provenance["git"].get("dirty_files") or []}
                ),
                "quick": quick,
                "overrides": p.experiment.overrides,
            },
        )
    for rec in res.collected.failed:
        res.failures.append(
            f"{p.experiment.name} point {rec.point} rep {rec.repetition}: "
            f"{rec.failed_step} failed: {rec.error}"
        )
    if res.engine is not None and res.engine.returncode != 0 and not res.failures:
        raise RunFailed(f"Snakemake exited with {res.engine.returncode}; see {res.engine.log_file}")
    return res
