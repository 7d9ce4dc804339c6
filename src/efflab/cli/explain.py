"""`efflab explain EXP`: for each point, cached or will run, and which part of its key
changed since the run that last produced it (efflab.results.explain)."""

from __future__ import annotations

import argparse

from efflab.cli.common import find_repo, parse_sets, print_json
from efflab.core.errors import BadInput
from efflab.plan.planner import plan_experiment
from efflab.results.explain import WILL_RUN, explain


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why each invocation is cached or will run")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("--point", action="append", metavar="KEY=VALUE", help="only points matching")
    p.add_argument("--against", default=None, metavar="RUN|VERSION",
                   help="compare with a run id or table version (default: each point's last run)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="apply the experiment's quick: block")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override an input")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    plan = plan_experiment(repo, args.experiment, args.quick, parse_sets(args.set), inspecting=True)
    want = parse_sets(args.point)
    for k in want:
        if k not in plan.param_names():
            raise BadInput(
                "--point",
                "$",
                f"a parameter of {args.experiment} ({', '.join(plan.param_names())})",
                k,
            )
    rows = [e for e in explain(repo, plan, args.against)
            if all(e.point.get(k) == v for k, v in want.items())]  # fmt: skip
    if want and not rows:
        raise BadInput("--point", "$", "a point of the experiment", args.point)
    if args.json:
        print_json([vars(e) for e in rows])
        return 0
    n_run = sum(e.status == WILL_RUN for e in rows)
    print(f"{args.experiment}: {n_run} of {len(rows)} points will run")
    for e in rows:
        print(f"  {e.line}")
    return 0
