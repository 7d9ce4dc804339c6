"""Other tools' formats on the command line: `efflab results import --format mlperf|asv`
(dispatched here from efflab.cli.results), `efflab results export --mlflow URI`, and
`efflab mlperf export EXP ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efflab.cli.common import find_repo, print_json


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_import_foreign(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    path = Path(args.path)
    quiet = args.json
    progress = None if quiet else _say
    if args.format == "mlperf":
        from efflab.nightly import imported

        if imported.is_history(path):
            res = imported.import_mlperf_history(repo, path, on_progress=progress)
        else:
            from efflab.results.formats import mlperf

            res = mlperf.import_tree(repo, path)
    else:
        from efflab.nightly import imported

        res = imported.import_asv(repo, path, on_progress=progress)
    if args.json:
        print_json(res.to_json())
        return 0
    print(
        f"imported {res.source} ({res.format}, as {res.host}): records +{res.records_added} "
        f"({res.records_unchanged} already here), tables +{res.tables_added}"
    )
    for exp, e in sorted(res.experiments.items()):
        extra = f", table v{e['table_version']}" if e.get("table_version") else ""
        print(f"  {exp}: {e.get('records', 0)} records, {e.get('points', 0)} points{extra}")
    if res.invalid:
        print(f"{len(res.invalid)} invalid run(s), imported and marked invalid (metric valid=0):")
        for i in res.invalid:
            print(f"  {i['experiment']} {i['system']} run {i['run']}: {i['reason']}")
    if res.nights:
        first, last = res.nights[0], res.nights[-1]
        print(
            f"{len(res.nights)} night(s) added to results/nightly/history.jsonl: "
            f"#{first['night']} ({first['date']}) .. #{last['night']} ({last['date']})"
        )
    if res.change_points:
        print("change points (Apache Otava E-divisive, persistent shifts only):")
        for c in res.change_points:
            print(
                f"  {c['experiment']} {c['series']} {c['metric']}: night #{c['night']} "
                f"{c['date']} commits {c['commits']} {c['mean_before']:.4g} -> "
                f"{c['mean_after']:.4g} ({c['change'] * 100:+.1f} %, p={c['p_value']:.2g}, "
                f"{c['direction']}{', OPEN: fails a nightly until accepted' if c['open'] else ''})"
            )
    elif res.nights:
        print("no persistent change point in any imported series")
    return 0


def register_results(rs: argparse._SubParsersAction) -> None:
    """`efflab results export --mlflow URI [EXP...]`."""
    e = rs.add_parser(
        "export",
        help="log run records to another tool (MLflow)",
        description="Each run record (the project's own and imported ones) becomes an MLflow "
        "run named by its invocation key, in an MLflow experiment named like the efflab "
        "experiment: the point as params, metrics with their units as tags "
        "(efflab.unit.<metric>), provenance as tags. Re-exporting adds only records not "
        "yet there (matched by the efflab.key tag). Exit 0 done, 1 the server refused, "
        "2 bad input.",
    )
    e.add_argument("experiments", nargs="*", metavar="EXP", help="default: every experiment")
    e.add_argument("--mlflow", required=True, metavar="URI",
                   help="MLflow tracking URI (http://host:port, or a local store)")  # fmt: skip
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(func=cmd_export_mlflow)


def cmd_export_mlflow(args: argparse.Namespace) -> int:
    from efflab.results.formats import mlflow_export

    res = mlflow_export.export(find_repo(args.repo), args.mlflow, args.experiments or None,
                               on_progress=None if args.json else _say)  # fmt: skip
    if args.json:
        print_json(res.to_json())
        return 0
    for exp, s in res.experiments.items():
        print(f"{exp}: {s['created']} runs logged, {s['unchanged']} already there")
    print(f"MLflow {res.uri}: {res.runs_created} runs logged, {res.runs_unchanged} already there")
    return 0


def cmd_mlperf_export(args: argparse.Namespace) -> int:
    from efflab.results.formats import mlperf_export

    res = mlperf_export.export(find_repo(args.repo), args.experiment, args.submitter,
                               args.division, Path(args.out), args.system)  # fmt: skip
    if args.json:
        print_json(res.to_json())
        return 0
    print(f"wrote {res.out}: {len(res.results)} run(s) of {len(res.systems)} system(s)")
    for r in res.results:
        print(
            f"  {r['system']}/{r['benchmark']}/{r['scenario']}/performance/run_{r['run']}: {r['validity']}"
        )
    if res.unfilled:
        print("system description fields no file on this machine tells (written N/A): "
              + ", ".join(res.unfilled))  # fmt: skip
    return 0
