"""`efflab compare BASE HEAD [EXP...]`: measure two revisions, interleaved, and say
what got slower (the pull-request question)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import find_repo, new_run_id, parse_sets
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="measure experiments at two git revisions and report what got slower",
        description="Measures the chosen experiments (default: the nightly suite's, at the "
        "suite's size) at BASE and at HEAD, each in a throw-away git worktree, both arms "
        "anew and interleaved repetition by repetition (ABBA). Every (point, metric) is "
        "judged with the nightly's statistics (one-sided Mann-Whitney U, Holm over the "
        "comparison, plus the metric's min_effect; noiseless metrics exactly): slower, "
        "faster, unchanged or inconclusive, with the change of the median and its bootstrap "
        "interval and links to both arms' records (kept under results/compare/<id>/). "
        "Exit 1 when anything got slower beyond the policy or a point failed, 0 otherwise, "
        "2 on bad input.",
    )
    p.add_argument("base", metavar="BASE", help="the revision compared against (e.g. main)")
    p.add_argument("head", metavar="HEAD", help="the revision under test (e.g. the PR's HEAD)")
    p.add_argument(
        "experiments",
        nargs="*",
        metavar="EXP",
        help="experiments to measure (default: the suite's); one of the suite is measured "
        "at the suite's size, any other at its own (--quick: its quick block)",
    )
    p.add_argument("--quick", action="store_true", help="quick size for experiments outside the suite")  # fmt: skip
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="input overrides for every chosen experiment",
    )
    p.add_argument(
        "--suite", default=None, metavar="FILE", help="suite file (default: workflows/nightly.yaml)"
    )
    p.add_argument(
        "--repetitions",
        default=None,
        metavar="N",
        help="repetitions per arm (default: the suite's per experiment)",
    )
    p.add_argument(
        "--format", choices=["md", "json"], default="md", help="report format (default md)"
    )
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--output", default=None, metavar="FILE", help="also write the report to FILE")
    p.add_argument(
        "--link-base",
        default="",
        metavar="URL",
        help="prefix of record links in the Markdown (default: paths in the repository)",
    )
    p.add_argument(
        "--notify",
        default=None,
        metavar="URL",
        help="POST the summary to this webhook (Slack-compatible JSON; default "
        "$EFFLAB_NOTIFY_URL when set)",
    )
    add_run_options(p, quick=False, profile=False)
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from efflab.nightly import compare, notify
    from efflab.nightly import suite as suite_mod

    repo = find_repo(args.repo)
    reps = None
    if args.repetitions is not None:
        try:
            reps = int(args.repetitions)
        except ValueError:
            raise BadInput("--repetitions", "$", "a whole number >= 2", args.repetitions) from None
    url = notify.target(args.notify)
    file = Path(args.suite).resolve() if args.suite else suite_mod.default_file(repo)
    suite = suite_mod.load(file)
    try:
        sets = parse_sets(args.set)
    except BadInput as exc:
        raise BadInput("--set", exc.path, exc.expected, exc.found) from None
    req = compare.prepare(
        repo, suite, args.base, args.head, args.experiments, reps, args.quick, sets
    )
    opts = run_options(args, repo)
    if not opts.quiet:
        print(
            f"efflab compare: {', '.join(e.name for e in req.entries)} at base "
            f"{req.base.sha[:10]} and head {req.head.sha[:10]}, interleaved",
            file=sys.stderr,
            flush=True,
        )

    def step(message: str) -> None:
        if not opts.quiet:
            print(f"efflab: {message}", file=sys.stderr, flush=True)

    rep = compare.run(req, opts, new_run_id(), on_step=step)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        import json

        text = json.dumps(rep.to_json(), indent=2, sort_keys=True) + "\n"
    else:
        text = compare.markdown(rep, args.link_base)
    if args.output:
        from efflab.core.specio import atomic_write_text

        atomic_write_text(Path(args.output), text)
    print(text, end="")
    if url:
        why = notify.post(url, notify.payload(compare.summary_line(rep), compare.chat_lines(rep)))
        if why:
            print(f"efflab: warning: webhook {url} not notified: {why}", file=sys.stderr)
    return rep.exit_code
