"""`efflab plan` and `efflab run`."""

from __future__ import annotations

import argparse
import sys

from efflab.cli.common import Progress, find_repo, new_run_id, parse_sets, print_json
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import RunFailed
from efflab.plan.planner import plan_experiment
from efflab.results import tables
from efflab.results.explain import WILL_RUN, explain
from efflab.workflow.pipeline import run_experiment

SHOW_COLUMNS = ["metric", "unit", "n", "median", "std", "min", "max"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="expand an experiment into invocations and keys")
    p.add_argument("experiment")
    p.add_argument("--quick", action="store_true", help="apply the experiment's quick: block")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override an input")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plan)

    r = sub.add_parser("run", help="run experiments through Snakemake and build their tables")
    r.add_argument("experiments", nargs="+", metavar="EXP")
    r.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override an input for every point (repeatable)",
    )
    add_run_options(r, fresh=True, dry_run=True)
    r.add_argument("--json", action="store_true", help="print the tables as JSON")
    r.set_defaults(func=cmd_run)


def cmd_plan(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    p = plan_experiment(repo, args.experiment, args.quick, parse_sets(args.set), inspecting=True)
    if args.json:
        print_json(
            {
                "experiment": p.experiment.name,
                "points": [
                    {"params": pt.params, "repetition": pt.repetition, "key": pt.key}
                    for pt in p.points
                ],
                "invocations": [inv.to_json() for inv in p.invocations.values()],
            }
        )
        return 0
    print(
        f"experiment {p.experiment.name}: {len(p.points)} points, "
        f"{len(p.invocations)} invocations ({len(p.invocations) - len(p.targets)} shared deps)"
    )
    for inv in sorted(p.invocations.values(), key=lambda i: (i.alias, i.key)):
        print(f"  {inv.key}  {inv.alias:<22} {_short_inputs(inv.inputs)}")
    return 0


def _short_inputs(inputs: dict) -> str:
    text = " ".join(f"{k}={v}" for k, v in sorted(inputs.items()))
    return text if len(text) < 100 else text[:97] + "..."


def cmd_run(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    overrides = parse_sets(args.set)
    run_id = new_run_id()
    salt = run_id if args.fresh else ""
    # plan everything first: all bad input is reported before anything runs
    opts = run_options(args, repo)
    identity = opts.runtime.identity()
    plans = [
        plan_experiment(repo, e, args.quick, overrides, salt, identity) for e in args.experiments
    ]
    runtime = opts.runtime.name
    out, failures = {}, []
    for p in plans:
        with Progress(f"{p.experiment.name}", opts.quiet) as prog:
            res = run_experiment(
                repo,
                p.experiment.name,
                opts,
                overrides=overrides,
                run_id=run_id,
                on_progress=prog.update,
                prepared=p,
            )
        if args.dry_run:
            todo = [e for e in explain(repo, p) if e.status == WILL_RUN]
            print(
                f"{p.experiment.name}: "
                + (f"would run {len(todo)} points" if todo else "nothing to do (all cached)")
            )
            for e in todo:  # one line each: why it runs (efflab explain has the detail)
                print(f"  {e.line}")
            continue
        failures += res.failures
        recs = res.collected.ok if res.collected else []
        contended = sum(bool(r.contended) for r in recs)
        if args.json:
            out[p.experiment.name] = {
                "version": res.version,
                "new_version": res.new_version,
                "jobs_run": res.jobs_run,
                "records": len(recs),
                "contended": contended,
                "rows": [] if res.table is None else res.table.to_dict(orient="records"),
                "failures": res.failures,
            }
            continue
        cols = [c for c in res.table.columns if c not in tables.STAT_COLUMNS] + SHOW_COLUMNS
        ver = (
            f"v{res.version}" + ("" if res.new_version else " (unchanged)")
            if res.version
            else "none"
        )
        print(
            f"\n## {p.experiment.name} — table {ver}, {res.jobs_run} jobs run, runtime {runtime}\n"
        )
        print(tables.to_markdown(res.table[cols]))
        print(f"\n{contention_line(p.experiment.name, len(recs), contended)}")
    if args.json and not args.dry_run:
        print_json(out)
    if failures:
        for f in failures:
            print(f"efflab: FAILED {f}", file=sys.stderr)
        raise RunFailed(
            f"{len(failures)} point(s) failed; records under results/<exp>/runs/*.failed.json"
        )
    return 0


def contention_line(experiment: str, records: int, contended: int) -> str:
    """What `run` says about contended records: how many, and what it means for timings."""
    if not contended:
        return f"{records} records, none contended: other work left the measured cores alone."
    return (
        f"{contended} of {records} records contended: other work needed the cores they "
        "ran on, so their timings are suspect; a paper's claim that reads one on an "
        "exclusive (timing) script comes out inconclusive. Measure again on a quieter "
        f"machine (`efflab run {experiment} --fresh`), or let `efflab reproduce` "
        "re-measure them."
    )
