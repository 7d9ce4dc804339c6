"""`efflab results publish|history`: table versions into and out of a git results repo."""

from __future__ import annotations

import argparse
from pathlib import Path

from efflab.cli.common import find_repo, print_json


def register(rs: argparse._SubParsersAction) -> None:
    """Add `publish` and `history` under the `results` subcommands (`rs`)."""
    p = rs.add_parser(
        "publish",
        help="commit table versions (and a nightly summary) to a git results repository",
        description="One commit per publish, an annotated tag <exp>/v<N> per table version; "
        "versions already tagged are skipped, so publishing twice changes nothing. "
        "The repository is created when absent.",
    )
    p.add_argument("experiments", nargs="+", metavar="EXP")
    p.add_argument(
        "--repo", dest="results_repo", required=True, metavar="PATH", help="results repository"
    )
    p.add_argument(
        "--version", type=int, action="append", default=None, metavar="N",
        help="only this table version (repeatable; needs exactly one EXP; default: all)",
    )  # fmt: skip
    p.add_argument("--nightly", type=int, default=None, metavar="N", help="also nightly #N")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_publish)

    h = rs.add_parser("history", help="list the versions published to a results repository")
    h.add_argument("experiment", metavar="EXP")
    h.add_argument(
        "--repo", dest="results_repo", required=True, metavar="PATH", help="results repository"
    )
    h.add_argument("--show", type=int, default=None, metavar="N", help="print published vN")
    h.add_argument("--json", action="store_true", help="machine-readable output")
    h.set_defaults(func=cmd_history)


def cmd_publish(args: argparse.Namespace) -> int:
    from efflab.core.errors import BadInput
    from efflab.results.publish import publish

    project = find_repo(args.repo)
    versions = None
    if args.version:
        if len(args.experiments) != 1:
            raise BadInput("--version", "$", "exactly one EXP with --version", args.experiments)
        versions = {args.experiments[0]: args.version}
    res = publish(
        project, args.experiments, Path(args.results_repo), versions=versions, nightly=args.nightly
    )
    if args.json:
        print_json(res.to_json())
    elif res.commit:
        made = "created, " if res.created else ""
        print(f"{res.repo}: {made}commit {res.commit[:10]}, tags: {', '.join(res.tags) or '-'}")
        if res.unchanged:
            print(f"already published: {', '.join(res.unchanged)}")
    else:
        print(f"{res.repo}: nothing new (already published: {', '.join(res.unchanged)})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from efflab.results.publish import history, published_table

    dest = Path(args.results_repo)
    if args.show is not None:
        print(published_table(dest, args.experiment, args.show), end="")
        return 0
    rows = history(dest, args.experiment)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"{args.experiment}: nothing published in {dest}")
    for r in rows:
        m = r["manifest"] or {}
        print(
            f"v{r['version']:<4} published {r['published']}  results-commit {r['commit'][:10]}  "
            f"code-commit {(m.get('git_commit') or '-')[:10]}  rows={m.get('rows', '?')}  "
            f"hash={(m.get('content_hash') or '?')[:12]}  run={m.get('run_id') or '-'}"
        )
    return 0
