"""`efflab optimize EXP`: constrained multi-objective search over an experiment's inputs.

Every trial is a planned, keyed invocation run through the normal pipeline, so a
trial measured before is a cache hit; the study lives in results/<exp>/optimize/
(`--resume` continues it after a kill); the front is a versioned table
(`efflab results table <exp>/optimize`). Exit 0 when a feasible configuration was
found, 1 when none was (or every trial failed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from efflab.cli.common import find_repo, new_run_id, parse_sets, print_json
from efflab.cli.options import add_run_options, positive_int, run_options
from efflab.core.errors import RunFailed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="search an experiment's inputs for the best configurations (Optuna)",
        description="Search the experiment's inputs (grid axes widened to their JSON-Schema "
        "range, enums as categoricals, narrowed by the experiment's search: block and "
        "--search) for the configurations that optimise the objectives under the "
        "constraints. Defaults come from the experiment's optimize: block.",
    )
    p.add_argument("experiment", metavar="EXP")
    p.add_argument(
        "--objective", action="append", metavar="METRIC:min|max",
        help="an objective (repeatable; two or more: a Pareto front)",
    )  # fmt: skip
    p.add_argument(
        "--constraint", action="append", metavar="METRIC>=X",
        help='a constraint on a metric\'s median: "M>=X", "M<=X", "M>X", "M<X" (repeatable)',
    )  # fmt: skip
    p.add_argument(
        "--search", action="append", metavar="NAME=SPEC",
        help="search an input over LOW..HIGH[:log] or V1,V2,... (repeatable; narrows search:)",
    )  # fmt: skip
    p.add_argument(
        "--set", action="append", metavar="NAME=VALUE",
        help="fix an input for every trial (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--trials", type=positive_int, default=None, help="trials in the study (default 20)"
    )
    p.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default=None,
                   help="Optuna sampler (default tpe)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="sampler seed (default 0)")
    p.add_argument(
        "--batch", type=positive_int, default=None,
        help="trials per Snakemake call (default --cores): run in parallel, deps shared",
    )  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the latest study with the same request; finished trials are kept")  # fmt: skip
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_optimize)


def cmd_optimize(args: argparse.Namespace) -> int:
    # Optuna, SQLAlchemy, pandas and matplotlib take seconds to import: only this
    # command pays for them, not `efflab --help` or the other commands
    from efflab.optimize.request import Options, build_request
    from efflab.optimize.search import optimize
    from efflab.optimize.space import parse_cli_search

    repo = find_repo(args.repo)
    cli = Options(
        objectives=args.objective,
        constraints=args.constraint,
        search=parse_cli_search(args.search),
        trials=args.trials,
        sampler=args.sampler,
        seed=args.seed,
        quick=args.quick,
        fixed=parse_sets(args.set),
    )
    if args.seed is not None and args.seed < 0:
        from efflab.core.errors import BadInput

        raise BadInput("--seed", "$", "a whole number >= 0", args.seed)
    req, exp, _ = build_request(repo, args.experiment, cli)
    opts = run_options(args, repo)
    run_id = new_run_id()

    def progress(done: int, total: int) -> None:
        if not opts.quiet:
            print(f"efflab: optimize {req.experiment}: {done}/{total} trials", file=sys.stderr)

    res = optimize(
        repo, req, exp, opts, resume=args.resume, batch=args.batch, run_id=run_id,
        on_trials=progress,
    )  # fmt: skip
    summary = res.to_json()
    if args.json:
        print_json(summary)
    else:
        _print(res, summary)
    if not res.front:
        raise RunFailed(
            f"no feasible configuration in {len(res.rows)} trials "
            f"({summary['trials_failed']} failed, {summary['trials_infeasible']} infeasible); "
            f"see {res.opened.folder / 'trials.csv'}"
        )
    return 0


def _fmt(e: dict | None) -> str:
    if not e:
        return "-"
    return f"{e['median']:.4g} [{e['low']:.4g}, {e['high']:.4g}]"


def _print(res, s: dict) -> None:
    req = res.request
    print(
        f"## {req.experiment}: study {s['study']} ({'resumed' if s['resumed'] else 'new'}), "
        f"{s['trials_finished']} trials ({s['trials_run_now']} now, {s['jobs_run_now']} jobs run, "
        f"{s['trials_cached']} cache hits, {s['trials_failed']} failed, "
        f"{s['trials_infeasible']} infeasible), sampler {req.sampler}, seed {req.seed}"
    )
    print("space: " + "; ".join(f"{p.name} {p.describe()}" for p in req.space.params))
    goals = ", ".join(o.text() for o in req.objectives)
    cons = ", ".join(c.text() for c in req.constraints) or "none"
    print(f"objectives: {goals}; constraints: {cons}")
    title = "Pareto front" if len(req.objectives) > 1 else "best trial"
    print(f"\n{title} (median [interval] over {exp_reps(res)} repetitions):")
    for r in res.front:
        params = " ".join(f"{k}={v}" for k, v in r.params.items())
        vals = "  ".join(f"{m}={_fmt(e)}" for m, e in r.objectives.items())
        print(f"  trial {r.number:>3}  {params}  {vals}")
    if s["table"]["version"]:
        new = "" if s["table"]["new_version"] else " (unchanged)"
        print(f"\ntable: {s['table']['name']} v{s['table']['version']}{new}")
    print(f"trials: {res.opened.folder / 'trials.csv'}   plot: {s['plot']}")
    if res.set_lines:
        print("\nrun the best configuration" + ("s" if len(res.set_lines) > 1 else "") + ":")
        for line in res.set_lines:
            print(f"  {line}")
    if s["trials_remeasured"] or s["trials_contended"]:
        print(
            f"\nnote: {s['trials_remeasured']} trial(s) had timings measured on a contended "
            f"machine and measured again; {s['trials_contended']} still contended after "
            "the last round: their timings are suspect (see trials.csv)",
            file=sys.stderr,
        )


def exp_reps(res) -> str:
    ns = sorted({e["n"] for r in res.front for e in r.objectives.values()})
    return "/".join(map(str, ns)) or "0"
