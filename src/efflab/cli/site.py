"""`efflab site build|serve`: the browsable static site over results/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import find_repo, print_json
from efflab.core import layout


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "site",
        help="build or serve the browsable site of experiments, papers, tournaments, nightly",
    )
    ss = p.add_subparsers(dest="site_cmd", metavar="SUBCOMMAND")
    b = ss.add_parser(
        "build",
        help="write the static site (works from file:// and any static host)",
        description="Reads results/ (this machine's and imported machines') and writes a "
        "static site: home, one page per experiment, paper, tournament, the nightly trends "
        "and the machines. Unreadable files are skipped and named (exit 0); "
        "exit 2 on bad usage.",
    )
    b.add_argument("--out", default=None, help="output folder (default: results/site)")
    b.add_argument("--title", default="efflab playground", help="site title")
    b.add_argument("--json", action="store_true", help="print what was built as JSON")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    b.set_defaults(func=cmd_build)
    s = ss.add_parser(
        "serve",
        help="serve the site on localhost and rebuild when results change",
        description="Builds the site, serves it with Python's http.server on 127.0.0.1 "
        "and rebuilds it whenever results/ changes (checked every --interval seconds).",
    )
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free)")
    s.add_argument("--out", default=None, help="output folder (default: results/site)")
    s.add_argument("--interval", type=float, default=2.0, help="seconds between checks")
    s.set_defaults(func=cmd_serve)
    p.set_defaults(func=lambda a: p.print_help() or 2)


def _say(quiet: bool):
    def step(name: str) -> None:
        if not quiet:
            print(f"efflab: site: {name} ...", file=sys.stderr)

    return step


def cmd_build(args: argparse.Namespace) -> int:
    from efflab.site.build import build

    repo = find_repo(args.repo)
    out = Path(args.out) if args.out else layout.site_dir(repo)
    res = build(repo, out, args.title, on_step=_say(args.quiet or args.json))
    for s in res.skipped:
        print(f"efflab: site: skipped {s.file}: {s.reason}", file=sys.stderr)
    if args.json:
        print_json(res.to_json())
        return 0
    big = max(res.pages.items(), key=lambda kv: kv[1], default=("-", 0))
    c = res.counts
    print(
        f"site: {res.out}/index.html · {len(res.pages)} pages in {res.seconds:.1f} s · "
        f"{c['experiments']} experiments, {c['papers']} papers, {c['tournaments']} tournaments, "
        f"{c['nights']} nights, {c['machines']} machines, {c['records_read']} records · "
        f"largest page {big[0]} {big[1] / 1e6:.2f} MB · {len(res.skipped)} skipped"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from efflab.site.serve import serve

    repo = find_repo(args.repo)
    out = Path(args.out) if args.out else layout.site_dir(repo)
    serve(repo, out, args.port, args.interval, log=lambda m: print(f"efflab: {m}", file=sys.stderr))
    return 0
