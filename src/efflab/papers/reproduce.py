"""Paper reproductions: plan-time checks and `reproduce` orchestration.

A paper spec (workflows/papers/<id>.yaml) names the experiments a paper needs and its
claims. `reproduce` validates every requested spec and plans every experiment first —
so a typo in any claim fails (exit 2) before a single job runs — then runs each
distinct (experiment, overrides) once through `pipeline.run_experiment` (the normal
engine: cached invocations, run records, a table version), evaluates the claims on
the tables and writes one report per paper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput, RunFailed, unknown_name
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.core.specio import canonical_json
from efflab.papers import capabilities, claims, plancheck, samples, verdict
from efflab.papers.evaluate import Outcome
from efflab.papers.outcome import ClaimResult, ExperimentRun, PaperResult
from efflab.papers.report import write_report
from efflab.papers.spec import Claim, Paper, load_papers
from efflab.plan.planner import Plan, Planner, load_experiment
from efflab.workflow import remeasure
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment


def _catalog(plan: Plan) -> plancheck.Catalog:
    metrics = list(plan.experiment.metrics or plan.script.metrics)
    points: list[dict[str, Any]] = []
    for pt in plan.points:
        if pt.params not in points:
            points.append(pt.params)
    return plancheck.Catalog(plan.experiment.name, metrics, plan.param_names(), points)


def prepare(
    repo: Path,
    papers: list[Paper],
    quick: bool,
    host: capabilities.Machine | None = None,
    runtime: RuntimeIdentity | None = None,
) -> tuple[list[ExperimentRun], dict[str, dict[str, ExperimentRun]]]:
    """Plan each distinct experiment once (keyed for `runtime`) and check every claim
    against its plan.

    Returns the runs and, per paper, experiment name -> its run (marked not applicable
    when every paper needing it requires what `host` lacks). Raises BadInput (naming
    the paper file and JSON path) before anything runs.
    """
    host = host or capabilities.this_machine()
    seen: set[tuple[str, str]] = set()
    exp_dir = repo / "workflows" / "experiments"
    known = sorted(p.stem for p in exp_dir.glob("*.yaml"))
    planner = Planner(repo, runtime=runtime)
    runs: dict[tuple[str, str], ExperimentRun] = {}
    per_paper: dict[str, dict[str, ExperimentRun]] = {}
    for paper in papers:
        mine: dict[str, ExperimentRun] = {}
        for need in paper.experiments:
            if need.name not in known:
                err = unknown_name("an experiment name", need.name, list(exp_dir.glob("*.yaml")))
                raise BadInput(paper.file, f"{need.path}.name", err.expected, need.name, err.hint)
            ov = need.overrides(quick)
            key = (need.name, canonical_json(ov))
            if key not in runs:
                exp = load_experiment(repo, need.name, quick, ov)
                script = planner.registry.find(exp.script, exp.file, "$.script")
                for k, v in ov.items():  # name the paper, not the experiment, for a bad override
                    field_ = "quick_inputs" if k in need.quick_inputs and quick else "inputs"
                    planner.check_inputs(
                        script, {k: v}, paper.file, {k: f"{need.path}.{field_}.{k}"}
                    )
                runs[key] = ExperimentRun(need.name, ov, planner.plan(exp))
            runs[key].papers.append(paper.id)
            missing = "; ".join(need.requires.missing(host)) if need.requires else ""
            if key not in seen:  # the first need sets it; any need that can run clears it
                runs[key].not_applicable = missing
                seen.add(key)
            elif not missing:
                runs[key].not_applicable = ""
            mine[need.name] = runs[key]
        catalogs = {n: _catalog(r.plan) for n, r in mine.items()}
        for c in paper.claims:
            plancheck.check(c.condition, catalogs, paper.file)
            check_control(paper, c, catalogs)
        per_paper[paper.id] = mine
    return list(runs.values()), per_paper


def check_control(paper: Paper, claim: Claim, catalogs: dict[str, plancheck.Catalog]) -> None:
    """The control's points must be planned too (new ones via the paper's inputs)."""
    if claim.control is None or claim.control.none or claim.cites:
        return
    try:
        plancheck.check(claim.control.condition(claim.condition), catalogs, paper.file)
    except BadInput as exc:
        raise BadInput(
            paper.file,
            claim.control.path,
            "a control whose points the experiment plans (add them in experiments[].inputs)",
            f"{exc.path}: {exc.found!r} ({exc.expected})",
        ) from None


MAX_REMEASURE = remeasure.MAX_ROUNDS


def contended_timing(repo: Path, run: ExperimentRun) -> list[str]:
    """Keys of the run's timing-sensitive (exclusive) records measured while contended,
    with contended exclusive dependencies and what is downstream of them."""
    if run.result is None or run.result.collected is None:
        return []
    keys = {pt.key for pt in run.plan.points}
    mine = [
        r.key
        for r in run.result.collected.ok
        if r.key in keys and r.contended and run.plan.invocations[r.key].resources.get("exclusive")
    ]
    # a contended measurement a point builds on (a calibration) is measured again too
    deps = remeasure.contended_deps(repo, run.plan, keys)
    return sorted(set(mine) | set(deps))


def set_aside(repo: Path, run: ExperimentRun, keys: list[str], round_: int) -> None:
    """Move a contended invocation's outputs.json aside, so the engine measures it again."""
    remeasure.set_aside(repo, run.plan, keys, round_)


def judge(
    paper: Paper, runs: dict[str, ExperimentRun], host: capabilities.Machine | None = None
) -> list[ClaimResult]:
    """Evaluate every claim; a claim on an experiment that failed to run is an error,
    one on an experiment this machine cannot run is not applicable."""
    host = host or capabilities.this_machine()
    tables = {n: r.samples for n, r in runs.items() if r.samples is not None}
    out = []
    for c in paper.claims:
        skipped = [
            f"{n} needs {runs[n].not_applicable}" for n in c.experiments if runs[n].not_applicable
        ]
        broken = [f"{n}: {runs[n].error}" for n in c.experiments if runs[n].error]
        if skipped:
            why = "not applicable on this machine: " + "; ".join(skipped)
            out.append(ClaimResult(c, Outcome(claims.NOT_APPLICABLE, "—", why)))
        elif broken:
            out.append(ClaimResult(c, Outcome(claims.ERROR, "—", "; ".join(broken))))
        else:
            out.append(verdict.judge(c, tables, host))
    return out


def reproduce(
    repo: Path,
    ids: list[str],
    *,
    all_papers: bool = False,
    opts: RunOptions | None = None,
    run_id: str = "",
    on_experiment: Callable[[ExperimentRun, int, int], Callable[[int, int], None] | None]
    | None = None,
    write: bool = True,
) -> list[PaperResult]:
    """Validate all specs, run the needed experiments once each, judge, write reports."""
    opts = opts or RunOptions()
    quick = opts.quick
    papers = load_papers(repo, ids, all_papers)
    # every bad input surfaces here
    runs, per_paper = prepare(repo, papers, quick, runtime=opts.runtime.identity())
    if not opts.runtime.available():  # asked for Docker and none answers: exit 2 first
        raise BadInput("--runtime", "$", f"a '{opts.runtime.name}' runtime that answers", "none")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    # one waiter for the whole reproduction (the command's own, or one made here)
    quiet = opts.waiter or remeasure.QuietWaiter()
    opts = opts.but(waiter=quiet)
    for i, run in enumerate(runs):
        if run.not_applicable:  # every paper needing it requires what this machine lacks
            continue
        progress = on_experiment(run, i, len(runs)) if on_experiment else None
        t0 = time.monotonic()
        run.runtime = opts.runtime.name
        try:
            previous: list[str] | None = None
            for round_ in range(MAX_REMEASURE + 1):
                run.result = run_experiment(
                    repo,
                    run.name,
                    opts,
                    overrides=run.overrides,
                    run_id=run_id,
                    on_progress=progress,
                    prepared=run.plan,
                )
                again = contended_timing(repo, run) if not opts.dry_run else []
                why = remeasure.stop_reason(round_, MAX_REMEASURE, again, previous, quiet)
                if why is not None:
                    run.still_contended = len(again)
                    run.remeasure_stop = why if again else ""
                    break
                run.remeasured += len(again)
                set_aside(repo, run, again, round_ + 1)
                previous = again
            if run.result.collected is not None:
                run.samples = samples.from_plan(run.plan, run.result.collected.ok)
                run.samples.remeasured = run.remeasured
            if run.result.table is None or run.result.table.empty:
                run.error = "no successful runs: " + "; ".join(run.result.failures[:3])
        except (RunFailed, BadInput) as exc:
            # specs were all checked above; what fails now is the environment (an
            # engine that went away, an image that does not build): the claims on
            # this experiment become errors, the other experiments still run
            run.error = str(exc)
        run.wall_s = time.monotonic() - t0
    out = []
    for paper in papers:
        mine = per_paper[paper.id]
        res = PaperResult(paper, quick, mine, judge(paper, mine), started)
        if write:
            res.report_dir = write_report(repo, res)
        out.append(res)
    return out
