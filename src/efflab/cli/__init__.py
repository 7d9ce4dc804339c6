"""`efflab` command line: one sub-module per command group, each with register(sub)."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from efflab.core.errors import BadInput, RunFailed

# Command groups, in --help order. Each module defines register(subparsers).
MODULES = [
    "run", "explain", "script", "repo", "optimize", "results", "env", "doctor", "papers",
    "tournament", "nightly", "compare", "site", "mlperf",
]  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"efflab: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    except OSError as exc:  # the disk refused a write no module wrapped: still one line
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        what = "no space left" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
        print(f"efflab: {what} writing {exc.filename or '?'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("efflab: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
