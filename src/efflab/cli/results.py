"""`efflab results table|versions|diff` (publish/history live in efflab.cli.publish)."""

from __future__ import annotations

import argparse
import importlib
import json
import math

from efflab.cli.common import find_repo, print_json
from efflab.core.errors import BadInput, unknown_name


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="versioned result tables")
    rs = p.add_subparsers(dest="results_cmd", metavar="SUBCOMMAND")
    t = rs.add_parser("table", help="print a table version")
    t.add_argument("experiment")
    t.add_argument("--version", type=int, default=None, help="version number (default: latest)")
    t.add_argument("--format", choices=["md", "csv", "json"], default="md")
    t.add_argument(
        "--wide",
        action="store_true",
        help="one row per point, inputs under their own names, one column per metric "
        "(its median; md adds the 95%% interval: median [low, high])",
    )
    t.set_defaults(func=cmd_table)
    v = rs.add_parser("versions", help="list table versions with their manifests")
    v.add_argument("experiment")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_versions)
    d = rs.add_parser("diff", help="compare two table versions (median per point and metric)")
    d.add_argument("experiment")
    d.add_argument("a", type=int)
    d.add_argument("b", type=int)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_diff)
    i = rs.add_parser(
        "import",
        help="merge another machine's results/ (or a published results repo) into this one",
        description="Records are merged by key and host (every imported record lands in "
        "results/<exp>/hosts/<host>/, marked imported with its source and sha256, whatever "
        "host it claims), table versions and reproduction reports are added (a report's "
        "JSON and images only: never its HTML); nothing is overwritten. The source is "
        "hostile: a symbolic link, device or FIFO anywhere in it, a file or byte count "
        "over the caps, a record, manifest or verdicts file that `efflab results check` "
        "would reject, or a record that conflicts with one here is exit 2 naming the "
        "file; nothing is written then. See docs/security.md.",
    )
    i.add_argument(
        "path",
        help="a results/ folder, a project root, or a published results repo; with --format "
        "mlperf an MLPerf submission tree, a folder of dated summary snapshots or a git "
        "repository of successive submissions; with --format asv an asv results folder",
    )
    i.add_argument(
        "--format",
        choices=["efflab", "mlperf", "asv"],
        default="efflab",
        help="efflab (default): another machine's efflab results; mlperf: an MLPerf "
        "inference submission tree (records + tables under results/<exp>/hosts/mlperf-"
        "<submitter>/) or a history of them (each snapshot or commit a nightly night); "
        "asv: an airspeed-velocity results folder (tables and nightly history)",
    )
    i.add_argument("--host", default=None, help="host label when the source names none")
    i.add_argument("--max-files", type=int, default=None,
                   help="most files one import reads (default 200000; $EFFLAB_IMPORT_MAX_FILES)")  # fmt: skip
    i.add_argument("--max-bytes", type=int, default=None,
                   help="most bytes one import reads (default 4 GiB; $EFFLAB_IMPORT_MAX_BYTES)")  # fmt: skip
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_import)
    r = rs.add_parser(
        "reindex",
        help="rebuild the columnar index (results/EXP/index/) from the JSON run records",
    )
    r.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="default: every one")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_reindex)
    c = rs.add_parser(
        "check", help="find corrupt run records and table versions (--repair: set aside)"
    )
    c.add_argument("experiment", nargs="?", default=None, help="one experiment (default: all)")
    c.add_argument(
        "--repair", action="store_true", help="move bad files to results/<exp>/quarantine/"
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)
    importlib.import_module("efflab.cli.formats").register_results(rs)
    # publish/history (nightly) register themselves here when present
    try:
        importlib.import_module("efflab.cli.publish").register(rs)
    except ModuleNotFoundError as exc:
        if exc.name != "efflab.cli.publish":
            raise
    p.set_defaults(func=lambda a: p.print_help() or 2)


def _clean(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def cmd_table(args: argparse.Namespace) -> int:
    from efflab.results import tables

    df, _ = tables.load(find_repo(args.repo), args.experiment, args.version)
    if args.wide:
        df = tables.wide(df, with_interval=args.format == "md")
    if args.format == "csv":
        print(tables.to_csv(df), end="")
    elif args.format == "json":
        rows = [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(tables.to_markdown(df), end="")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from efflab.results import tables

    repo = find_repo(args.repo)
    _known(repo, args.experiment)
    mans = [
        tables.manifest(repo, args.experiment, v) for v in tables.versions(repo, args.experiment)
    ]
    if args.json:
        print_json(mans)
        return 0
    if not mans:
        print(f"{args.experiment}: no table versions yet")
    for m in mans:
        commit = (m.get("git_commit") or "-")[:10]
        print(
            f"v{m['version']:<4} {m['created']}  rows={m['rows']:<5} commit={commit} "
            f"hash={m['content_hash'][:12]} parent={m['parent']}"
        )
    return 0


def _known(repo, experiment: str) -> None:
    """An experiment with a spec or with results; anything else is a typo (exit 2)."""
    specs = repo / "workflows" / "experiments"
    if (specs / f"{experiment}.yaml").is_file() or (repo / "results" / experiment).is_dir():
        return
    err = unknown_name("an experiment name", experiment, list(specs.glob("*.yaml")))
    raise BadInput(specs / f"{experiment}.yaml", "$", err.expected, experiment, err.hint)


def cmd_check(args: argparse.Namespace) -> int:
    from efflab.results import check

    repo = find_repo(args.repo)
    if args.experiment:
        _known(repo, args.experiment)
    rep = check.check(repo, [args.experiment] if args.experiment else None, args.repair)
    if args.json:
        print_json({"checked": rep.checked, "experiments": rep.experiments,
                    "problems": [vars(p) for p in rep.problems], "ok": rep.ok})  # fmt: skip
        return 0 if rep.ok else 1
    for p in rep.problems:
        where = f" -> moved to {p.moved_to}" if p.moved_to else ""
        print(f"{p.file}: {p.path}: {p.problem}{where}")
    bad = sum(1 for p in rep.problems if not p.moved_to)
    print(f"checked {rep.checked} files in {len(rep.experiments)} experiment(s): "
          f"{len(rep.problems)} bad" + (f", {bad} left (rerun with --repair)" if bad else ""))  # fmt: skip
    return 0 if rep.ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from efflab.results import tables

    repo = find_repo(args.repo)
    a, _ = tables.load(repo, args.experiment, args.a)
    b, _ = tables.load(repo, args.experiment, args.b)
    d = tables.diff(a, b)
    if args.json:
        print_json([{k: _clean(v) for k, v in r.items()} for r in d.to_dict(orient="records")])
        return 0
    d = d.rename(columns={"median_a": f"median v{args.a}", "median_b": f"median v{args.b}"})
    print(tables.to_markdown(d), end="")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from efflab.results.importer import import_results
    from efflab.results.safe_copy import Limits

    if args.format != "efflab":
        from efflab.cli.formats import cmd_import_foreign

        return cmd_import_foreign(args)
    limits = Limits.from_env(max_files=args.max_files, max_bytes=args.max_bytes)
    res = import_results(find_repo(args.repo), Path(args.path), args.host, limits)
    if args.json:
        print_json(res.to_json())
        return 0
    print(
        f"imported {res.source} ({res.kind}; hosts: {', '.join(res.hosts) or '-'}): "
        f"records +{res.records_added} ({res.records_unchanged} already here), "
        f"tables +{res.tables_added} ({res.tables_unchanged} already here), "
        f"reports +{res.reports_added} ({res.reports_unchanged} already here); "
        f"{res.files_read} files read, {len(res.left_out)} left out (not JSON, tables or images)"
    )
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from efflab.core import layout
    from efflab.core.errors import BadInput
    from efflab.results import index

    repo = find_repo(args.repo)
    root = layout.results_dir(repo)
    known = sorted(d.name for d in root.iterdir() if (d / "runs").is_dir()) if root.is_dir() else []
    for name in args.experiments:
        if name not in known:
            raise BadInput(
                root,
                "$.experiment",
                f"an experiment with run records ({', '.join(known) or 'none'})",
                name,
            )
    out = []
    for name in args.experiments or known:
        update = index.rebuild(repo, name)
        out.append({"experiment": name, "records": update.added, "part": str(update.part)})
        if not args.json:
            print(f"{name}: {update.added} records -> {update.part}")
    if args.json:
        print_json(out)
    return 0
