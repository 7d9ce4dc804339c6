"""`efflab plan` and `efflab run`."""

from __future__ import annotations

import argparse
import sys

from ..errors import RunFailed
from .common import Progress, find_repo, new_run_id, parse_sets, print_json

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
    r.add_argument("--cores", type=int, default=1, help="cores Snakemake may use (default 1)")
    r.add_argument("--dry-run", action="store_true", help="show what would run, run nothing")
    r.add_argument("--quick", action="store_true", help="apply each experiment's quick: block")
    r.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override an input for every point (repeatable)",
    )
    r.add_argument(
        "--runtime",
        choices=["auto", "docker", "host"],
        default="auto",
        help="where scripts run (auto: docker when an engine answers)",
    )
    r.add_argument("--profile", default=None, help="Snakemake profile under workflows/profiles/")
    r.add_argument(
        "--fresh",
        action="store_true",
        help="measure anew: salt the experiment's own steps with the run id (deps stay cached)",
    )
    r.add_argument("--json", action="store_true", help="print the tables as JSON")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=cmd_run)


def cmd_plan(args: argparse.Namespace) -> int:
    from ..pipeline import plan

    repo = find_repo(args.repo)
    p = plan(repo, args.experiment, args.quick, parse_sets(args.set))
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


def profile_path(repo, name):
    if name is None:
        return None
    from ..profiles import resolve

    return resolve(repo, name)


def cmd_run(args: argparse.Namespace) -> int:
    from .. import tables
    from ..pipeline import plan, resolve_runtime, run_experiment

    repo = find_repo(args.repo)
    overrides = parse_sets(args.set)
    run_id = new_run_id()
    salt = run_id if args.fresh else ""
    # plan everything first: all bad input is reported before anything runs
    plans = [plan(repo, e, args.quick, overrides, salt) for e in args.experiments]
    runtime = resolve_runtime(args.runtime)
    profile = profile_path(repo, args.profile)
    out, failures = {}, []
    for p in plans:
        with Progress(f"{p.experiment.name}", args.quiet or args.json) as prog:
            res = run_experiment(
                repo,
                p.experiment.name,
                cores=args.cores,
                quick=args.quick,
                overrides=overrides,
                dry_run=args.dry_run,
                runtime=runtime,
                run_id=run_id,
                profile=profile,
                on_progress=prog.update,
                prepared=p,
            )
        if args.dry_run:
            todo = sum(1 for _ in p.targets) if res.engine else 0
            print(
                f"{p.experiment.name}: {'would run jobs for ' + str(todo) + ' points' if todo else 'nothing to do (all cached)'}"
            )
            continue
        failures += res.failures
        if args.json:
            out[p.experiment.name] = {
                "version": res.version,
                "new_version": res.new_version,
                "jobs_run": res.jobs_run,
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
    if args.json and not args.dry_run:
        print_json(out)
    if failures:
        for f in failures:
            print(f"efflab: FAILED {f}", file=sys.stderr)
        raise RunFailed(
            f"{len(failures)} point(s) failed; records under results/<exp>/runs/*.failed.json"
        )
    return 0
