"""`efflab tournament baseline TOURNAMENT --trials N`: the organiser's baseline.

Runs `optimize` over the tournament's space (its submission schema, the base
experiment at the tournament's fixed inputs, its objectives and constraints), then
enters the front's best entry (tie-break order) as an ordinary submission by
`organiser` — signed with the organiser's key in a keyed tournament (--key, or the
tournament's kept key, see efflab.tournaments.baseline.organiser_key), verified sealed,
recorded in the ledger, marked on the leaderboard.
Exit 0 accepted, 1 rejected or nothing feasible found, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from efflab.cli.common import find_repo, new_run_id, print_json
from efflab.cli.options import add_run_options, positive_int, run_options
from efflab.core.errors import RunFailed


def register(ts: argparse._SubParsersAction) -> None:
    b = ts.add_parser(
        "baseline",
        help="optimize over the tournament's space and submit the best entry as the organiser's baseline",
        description="Search the tournament's submission space with `efflab optimize` (trials "
        "run through the normal pipeline, cached), then submit the best front entry "
        "(tie-break order) as participant 'organiser', entry 'baseline-optimize'.",
    )
    b.add_argument("tournament")
    b.add_argument(
        "--trials", type=positive_int, default=20, help="trials in the study (default 20)"
    )
    b.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default=None)
    b.add_argument("--seed", type=int, default=None, help="sampler seed (default 0)")
    b.add_argument("--resume", action="store_true", help="continue the latest matching study")
    b.add_argument(
        "--key",
        type=Path,
        default=None,
        help="keyed tournaments: the organiser's private key (default: one kept for the "
        "tournament in .efflab/keys/, made and registered as 'organiser' on first use)",
    )
    add_run_options(b, quick=False)
    b.add_argument("--json", action="store_true", help="the study summary and ledger entry as JSON")
    b.set_defaults(func=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> int:
    # optuna/pandas/matplotlib cost seconds to import: only this command pays
    import sys

    from efflab.optimize.request import Options, build_request
    from efflab.optimize.search import optimize
    from efflab.optimize.space import Source
    from efflab.tournaments import baseline
    from efflab.tournaments.signing import sign_submission
    from efflab.tournaments.spec import load_tournament
    from efflab.tournaments.submit import participants_file, preflight, submit

    repo = find_repo(args.repo)
    t = load_tournament(repo, args.tournament)
    key = None
    if t.identity == "keys":  # fail before the search, not after it
        key, note = baseline.organiser_key(repo, t, participants_file(repo, t), args.key)
        if note:
            print(f"efflab: baseline {t.id}: {note}", file=sys.stderr)
    preflight(repo, t)  # the verifier must work before trials are spent
    schemas, search = baseline.space(repo, t)
    objectives, constraints = baseline.goals(t)
    cli = Options(
        objectives=objectives,
        constraints=constraints,
        trials=args.trials,
        sampler=args.sampler,
        seed=args.seed,
        quick=t.quick,
        fixed=dict(t.fixed_inputs),
    )
    req, exp, _ = build_request(
        repo, t.experiment, cli,
        schemas=schemas,  # the submission schema only: what an entrant may choose
        owner=f"tournament '{t.id}'",
        extra_search=[(search, Source(t.file, "$.submission.inputs.properties"))],
    )  # fmt: skip
    opts = run_options(args, repo)

    def progress(done: int, total: int) -> None:
        if not opts.quiet:
            print(f"efflab: baseline {t.id}: {done}/{total} trials", file=sys.stderr)

    res = optimize(
        repo, req, exp, opts, resume=args.resume, run_id=new_run_id(), on_trials=progress
    )
    summary = res.to_json()
    if not res.front:
        raise RunFailed(f"no feasible configuration in {len(res.rows)} trials; nothing submitted")
    best = baseline.pick(t, summary["front"])
    file = baseline.write_submission(t, res.opened.folder, best, res.opened.number)
    if not opts.quiet:
        print(
            f"efflab: submitting trial {best['trial']} {best['params']} to {t.id}", file=sys.stderr
        )
    if key is not None:
        sign_submission(repo, t.id, file, key)  # FILE.sig, found by submit
    v = submit(repo, t.id, file)
    if args.json:
        print_json({"optimize": summary, "ledger_entry": v.entry})
    else:
        print(
            f"{t.id}: study {res.opened.number}, {len(res.rows)} trials, front of {len(res.front)}"
        )
        print(f"baseline: trial {best['trial']} {best['params']} -> {v.entry['verdict']}"
              + (f" ({v.reason})" if v.reason else ""))  # fmt: skip
        for m, val in v.metrics.items():
            print(f"  {m:<24} {val:.4g}")
    if not v.accepted:
        raise RunFailed(f"the baseline was rejected: {v.reason}")
    return 0
