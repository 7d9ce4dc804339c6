"""The search loop: ask a batch of trials from Optuna, run it as one pipeline call,
tell the results (objective medians, constraint violations), until the budget is
spent; then report. Stopping at any point loses no finished trial (see study.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from efflab.optimize import report
from efflab.optimize.report import Result
from efflab.optimize.request import Request
from efflab.optimize.study import OUTCOME, finished, open_study
from efflab.optimize.trials import Outcome, evaluate
from efflab.plan.planner import Experiment
from efflab.workflow import remeasure
from efflab.workflow.options import RunOptions


def _tell(study: optuna.Study, trial: optuna.Trial, o: Outcome, req: Request) -> None:
    missing = [
        m for m in [*(x.metric for x in req.objectives), *(c.metric for c in req.constraints)]
        if m not in o.metrics
    ]  # fmt: skip
    if o.ok and missing:
        o.ok, o.error = False, f"metric(s) not reported: {', '.join(missing)}"
    trial.set_user_attr("keys", o.keys)
    trial.set_user_attr("cached", o.cached)
    trial.set_user_attr("contended", o.contended)
    trial.set_user_attr("remeasured", o.remeasured)
    if not o.ok:
        trial.set_user_attr("error", o.error[:500])
        trial.set_user_attr(OUTCOME, "failed")
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr("metrics", {m: e.to_json() for m, e in o.metrics.items()})
    for c in req.constraints:
        trial.set_constraint(c.text(), c.violation(o.metrics[c.metric].median))
    trial.set_user_attr(OUTCOME, "ok")
    study.tell(trial, [o.metrics[x.metric].median for x in req.objectives])


def optimize(
    repo: Path,
    req: Request,
    exp: Experiment,
    opts: RunOptions,
    *,
    resume: bool = False,
    batch: int | None = None,
    run_id: str = "",
    on_trials: Callable[[int, int], None] | None = None,
    remeasure_rounds: int | None = None,
) -> Result:
    """Run (or resume) the study until `req.trials` trials are finished. Contended
    timing repetitions are measured again up to `remeasure_rounds` times (default
    workflow.remeasure.MAX_ROUNDS; 0 takes the records as they are)."""
    batch = max(1, batch or opts.cores)
    # one waiter for the whole study: patient once, not once per batch (a 6-trial study
    # of a 0.2 s script took 14 min when each batch waited up to 120 s on its own)
    opts = opts if opts.waiter is not None else opts.but(waiter=remeasure.QuietWaiter())
    rounds = remeasure.MAX_ROUNDS if remeasure_rounds is None else remeasure_rounds
    opened = open_study(repo, req, resume, batch)
    study = opened.study
    dists = req.space.distributions()
    done = len(finished(study))
    jobs = trials_run = 0
    if on_trials:
        on_trials(done, req.trials)
    while done < req.trials:
        size = min(batch, req.trials - done)
        asked = [study.ask(fixed_distributions=dists) for _ in range(size)]
        params = [{n: t.params[n] for n in req.space.names()} for t in asked]
        b = evaluate(repo, req, exp, params, opts, run_id, rounds=rounds)
        for t, o in zip(asked, b.outcomes, strict=True):
            _tell(study, t, o, req)
        jobs += b.jobs_run
        trials_run += size
        done += size
        if on_trials:
            on_trials(done, req.trials)
    return report.finish(repo, req, opened, jobs, trials_run)
