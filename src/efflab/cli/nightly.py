"""`efflab nightly`: run the suite, judge regressions, write the dashboard, maybe publish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import Progress, find_repo, new_run_id, print_json
from efflab.cli.options import add_run_options, run_options
from efflab.core.errors import RunFailed


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
    p.add_argument("--json", action="store_true", help="print summary.json instead of text")
    p.set_defaults(func=cmd_nightly)


def cmd_nightly(args: argparse.Namespace) -> int:
    from efflab.nightly import dashboard
    from efflab.nightly import night as nightly
    from efflab.nightly import suite as suite_mod

    repo = find_repo(args.repo)
    file = Path(args.suite).resolve() if args.suite else suite_mod.default_file(repo)
    suite = suite_mod.load(file)
    run_id = new_run_id()
    plans = suite_mod.plan(repo, suite, salt=run_id)  # all bad input before anything runs
    if args.publish:
        from efflab.results.publish import check_destination

        check_destination(Path(args.publish))
    opts = run_options(args, repo)
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
    if publish_error:
        print(f"efflab: {publish_error}", file=sys.stderr)
        return 1
    return night.exit_code
