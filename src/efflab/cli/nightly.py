"""`efflab nightly`: run the suite, judge regressions, write the dashboard, maybe publish;
`efflab nightly accept` records a new level; `efflab nightly bisect` finds the commit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import Progress, find_repo, new_run_id, parse_sets, print_json
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import BadInput, RunFailed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nightly",
        help="run the nightly suite and fail on a statistically significant regression",
        description="Runs every experiment of the suite anew (a per-night salt defeats the "
        "cache for the measured steps only), saves new table versions, compares each metric "
        "of each point with the last nights (one-sided Mann-Whitney U, Holm-corrected, plus "
        "a minimum relative effect), writes results/nightly/<n>/ and prints a summary. "
        "Exit 1 on any regression or failed point, 0 otherwise, 2 on bad input.",
    )
    p.add_argument(
        "--suite", default=None, metavar="FILE", help="suite file (default: workflows/nightly.yaml)"
    )
    p.add_argument(
        "--publish", default=None, metavar="REPO", help="publish tables + summary to this git repo"
    )
    add_run_options(p, quick=False, profile=False)
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail (exit 1) when a comparison is underpowered or has no baseline",
    )
    p.add_argument("--json", action="store_true", help="print summary.json instead of text")
    p.add_argument(
        "--notify",
        default=None,
        metavar="URL",
        help="POST the night's summary to this webhook (Slack-compatible JSON; default "
        "$EFFLAB_NOTIFY_URL when set)",
    )
    p.set_defaults(func=cmd_nightly)
    sub2 = p.add_subparsers(dest="nightly_cmd", metavar="{accept,bisect}")
    a = sub2.add_parser(
        "accept",
        help="accept a night's new level: its regressions re-enter the baseline",
        description="Records in results/nightly/history.jsonl that the level measured from "
        "night <night> on is the new normal (for --metric, or every flagged metric): the "
        "regression flags and open change points of that metric from <night> to the latest "
        "night are accepted, and their baselines start at <night>. Exit 0 recorded, 2 bad input.",
    )
    a.add_argument("night", type=int, help="the night whose level is accepted")
    a.add_argument("--metric", default=None, help="only this metric (default: every flagged one)")
    a.add_argument("--reason", default="", help="why (kept in the history)")
    a.add_argument("--json", action="store_true", help="print the recorded acceptance")
    a.set_defaults(func=cmd_accept)
    b = sub2.add_parser(
        "bisect",
        help="find the commit that moved a metric of one point",
        description="Measures the point at commits between --good and --bad (first-parent "
        "line) in throw-away git worktrees, with the suite's workload and repetitions, and "
        "bisects to the first commit whose measurement differs from good's like bad's does "
        "(one-sided Mann-Whitney U plus the metric's min_effect; noiseless metrics exactly; "
        "alpha split over the measurements a bisection can need). Invocations whose content "
        "keys did not change between commits are reused. Prints, per tested commit, its "
        "message and measurements. Exit 0 found, 1 not found, 2 bad input.",
    )
    b.add_argument("experiment", metavar="EXP", help="an experiment of the suite")
    b.add_argument("--metric", required=True, help="the metric to bisect")
    b.add_argument(
        "--point",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="parameters selecting one point of the experiment",
    )
    b.add_argument("--good", required=True, metavar="COMMIT", help="a commit measured as good")
    b.add_argument("--bad", required=True, metavar="COMMIT", help="a later commit measured as bad")
    b.add_argument(
        "--suite", default=None, metavar="FILE", help="suite file (default: workflows/nightly.yaml)"
    )
    b.add_argument(
        "--repetitions",
        default=None,
        metavar="N",
        help="repetitions per tested commit and per interleaved good run (default: the "
        "suite's); refused when too few for the test to reach its alpha",
    )
    add_run_options(b, quick=False, profile=False)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_bisect)


def cmd_nightly(args: argparse.Namespace) -> int:
    from efflab.nightly import dashboard, notify
    from efflab.nightly import night as nightly
    from efflab.nightly import suite as suite_mod

    repo = find_repo(args.repo)
    url = notify.target(args.notify)
    file = Path(args.suite).resolve() if args.suite else suite_mod.default_file(repo)
    suite = suite_mod.load(file)
    run_id = new_run_id()
    opts = run_options(args, repo)
    # all bad input before anything runs
    plans = suite_mod.plan(repo, suite, salt=run_id, runtime=opts.runtime.identity())
    if args.publish:
        from efflab.results.publish import check_destination

        check_destination(Path(args.publish))
    quiet = opts.quiet
    bar: list[Progress] = []  # one progress bar per experiment, opened as each starts

    def started(name: str) -> None:
        if bar:
            bar.pop().__exit__(None, None, None)
        bar.append(Progress(f"nightly: {name}", quiet).__enter__())

    def progress(done: int, total: int) -> None:
        if bar:
            bar[0].update(done, total)

    try:
        night = nightly.run(
            repo,
            suite,
            run_id=run_id,
            plans=plans,
            opts=opts,
            on_start=started,
            on_progress=progress,
            strict=args.strict,
        )
    finally:
        if bar:
            bar.pop().__exit__(None, None, None)
    dashboard.write(repo, night, suite.trend_nights)
    publish_error = ""
    if args.publish:
        from efflab.results.publish import publish

        versions = {e: [o.version] for e, o in night.experiments.items() if o.version}
        try:
            res = publish(
                repo, list(versions), Path(args.publish), versions=versions, nightly=night.night
            )
            night.published = res.to_json()
        except RunFailed as exc:  # the night is judged and saved; say so, then fail
            publish_error = str(exc)
    if args.json:
        print_json(night.to_json())
    else:
        print(dashboard.text(night), end="")
        if night.published:
            tags = ", ".join(night.published["tags"]) or "nothing new"
            print(f"published to {night.published['repo']}: {tags}")
    if url:
        title, *rest = dashboard.text(night).splitlines()
        why = notify.post(url, notify.payload(title, [ln for ln in rest if ln.strip()]))
        if why:
            print(f"efflab: warning: webhook {url} not notified: {why}", file=sys.stderr)
    if publish_error:
        print(f"efflab: {publish_error}", file=sys.stderr)
        return 1
    return night.exit_code


def cmd_accept(args: argparse.Namespace) -> int:
    from efflab.nightly import history

    repo = find_repo(args.repo)
    rec = history.accept(repo, args.night, args.metric, args.reason)
    if args.json:
        print_json(rec)
    else:
        what = args.metric or "every flagged metric"
        print(
            f"accepted night #{rec['night']} (through #{rec['through']}) for {what}: "
            f"{len(rec['covers'])} point/metric pair(s); their baselines start at night "
            f"#{rec['night']}" + (f" - {rec['reason']}" if rec["reason"] else "")
        )
        for c in rec["covers"]:
            print(f"  {c['experiment']}  {c['metric']}  (group {c['group']})")
    return 0


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.4g}"


def cmd_bisect(args: argparse.Namespace) -> int:
    from efflab.nightly import bisect
    from efflab.nightly import suite as suite_mod

    repo = find_repo(args.repo)
    try:
        point = parse_sets(args.point)
    except BadInput as exc:
        raise BadInput("--point", exc.path, exc.expected, exc.found) from None
    file = Path(args.suite).resolve() if args.suite else suite_mod.default_file(repo)
    suite = suite_mod.load(file)
    reps = None
    if args.repetitions is not None:
        try:
            reps = int(args.repetitions)
        except ValueError:
            raise BadInput("--repetitions", "$", "a whole number >= 1", args.repetitions) from None
    req = bisect.prepare(
        repo, suite, args.experiment, args.metric, point, args.good, args.bad, reps
    )
    opts = run_options(args, repo)
    out = sys.stderr if args.json else sys.stdout
    print(
        f"bisect {req.entry.name} {req.metric} at {req.point}: {len(req.commits)} commit(s) "
        f"after good {req.good[:10]}, at most {bisect.tests_needed(len(req.commits))} "
        "measurement(s), each interleaved with good",
        file=out,
        flush=True,
    )

    def step(t: bisect.Tested) -> None:
        change = "n/a" if t.change != t.change else f"{t.change:+.1%}"
        how = "reused" if t.reused else f"{t.jobs_run} job(s) + {t.good_jobs} for good"
        lines = [
            f"  {t.verdict:4}  {t.commit[:10]}  {t.subject[:60]}",
            f"        median {_fmt(t.median)} vs good {_fmt(t.good_median)} ({change}), "
            f"p={_fmt(t.p)}, {how}, {t.wall_s:.1f} s",
        ]
        if t.values:
            lines.append(f"        values [{', '.join(_fmt(v) for v in t.values)}]")
            lines.append(f"        good   [{', '.join(_fmt(v) for v in t.good_values)}]")
        if t.note:
            lines.append(f"        {t.note}")
        print("\n".join(lines), file=out, flush=True)

    res = bisect.run(req, opts, new_run_id(), on_step=step)
    if args.json:
        print_json(res.to_json())
    else:
        print(
            f"{res.message}\n{len(res.tested)} commit(s) tested of {res.commits_in_range}, "
            f"{res.wall_s:.1f} s"
        )
    return res.exit_code
