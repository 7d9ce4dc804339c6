"""`efflab` command line: one sub-module per command group, each with register(sub)."""

from __future__ import annotations

import argparse
import importlib
import sys

from efflab.core.errors import BadInput, RunFailed

# Command groups, in --help order. Each module defines register(subparsers).
MODULES = ["run", "results", "env", "doctor", "papers", "tournament", "nightly", "optimize"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="efflab",
        description="Reproducible AI-efficiency experiments: scripts -> plan -> Snakemake -> "
        "runner -> run records -> versioned tables -> papers, tournaments, nightly.",
    )
    parser.add_argument("--repo", default=None, help="project root (default: auto-detected)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in MODULES:
        try:
            mod = importlib.import_module(f"efflab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"efflab.cli.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BadInput as exc:
        print(f"efflab: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"efflab: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `efflab ... | head`: not an error worth a traceback
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("efflab: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
