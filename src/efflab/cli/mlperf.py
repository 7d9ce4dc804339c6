"""`efflab mlperf export`: an MLPerf inference submission tree from a LoadGen experiment
(the reverse of `efflab results import --format mlperf`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mlperf", help="MLPerf submission trees (export; import is `results import`)"
    )
    ms = p.add_subparsers(dest="mlperf_cmd", metavar="SUBCOMMAND")
    e = ms.add_parser(
        "export",
        help="write an MLPerf inference submission tree from a LoadGen experiment",
        description="For each run record of EXP whose script kept LoadGen's logs (summary, "
        "detail) as file outputs: OUT/<division>/<submitter>/results/<system>/EXP/<Scenario>/"
        "performance/run_<repetition>/, one system per implementation (the point's parameters "
        "other than scenario), systems/<system>.json describing this machine, and "
        "measurements/ with the efflab provenance. Logs are copied byte for byte after "
        "parsing with the importer's parser. Exit 0 written, 2 bad input (nothing written).",
    )
    e.add_argument("experiment", metavar="EXP")
    e.add_argument("out", metavar="OUT", help="folder of the submission tree")
    e.add_argument("--submitter", required=True, help="submitter name (a folder name)")
    e.add_argument("--division", choices=["open", "closed", "network"], default="open")
    e.add_argument("--system", default=None, help="system name prefix (default: the hostname)")
    e.add_argument("--json", action="store_true", help="machine-readable output")

    def run(args: argparse.Namespace) -> int:
        from efflab.cli.formats import cmd_mlperf_export

        return cmd_mlperf_export(args)

    e.set_defaults(func=run)
    p.set_defaults(func=lambda a: p.print_help() or 2)
