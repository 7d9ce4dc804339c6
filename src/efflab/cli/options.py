"""The run option group shared by `run`, `reproduce`, `nightly` (and `optimize`):
declared once, turned into one RunOptions once, so defaults cannot drift."""

from __future__ import annotations

import argparse
from pathlib import Path

from efflab.cli.common import WaitNotice
from efflab.core.errors import BadInput
from efflab.runtime import base
from efflab.workflow.options import RunOptions
from efflab.workflow.profiles import resolve as resolve_profile


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {n}")
    return n


def add_run_options(p: argparse.ArgumentParser, *, quick: bool = True, profile: bool = True,
                    fresh: bool = False, dry_run: bool = False) -> None:  # fmt: skip
    g = p.add_argument_group("how to run")
    g.add_argument(
        "--cores", type=positive_int, default=1, help="cores Snakemake may use (default 1)"
    )
    g.add_argument(
        "--runtime",
        choices=["auto", *sorted(base.RUNTIMES)],
        default="auto",
        help="where scripts run (default auto: docker when an engine answers, else host)",
    )
    if quick:
        g.add_argument("--quick", action="store_true", help="apply each experiment's quick: block")
    if profile:
        g.add_argument(
            "--profile", default=None, help="Snakemake profile under workflows/profiles/"
        )
    if profile:
        g.add_argument(
            "--batch-seconds",
            type=float,
            default=None,
            metavar="S",
            help="batch invocations shorter than S seconds (meta.yaml "
            "resources.expected_s, default 10) into jobs of about S seconds: one "
            "Snakemake (on a cluster, one SLURM) job runs them in order",
        )
    if fresh:
        g.add_argument(
            "--fresh",
            action="store_true",
            help="measure anew: salt the experiment's own steps with the run id (deps stay cached)",
        )
    if dry_run:
        g.add_argument("--dry-run", action="store_true", help="show what would run, run nothing")
    g.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="another efflab run holds the experiment: exit 2 naming it (default: wait for it)",
    )
    g.add_argument(
        "--quiet-wait",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="before exclusive timing jobs (and before measuring contended ones again), "
        "wait up to SECONDS in all for other work on the machine to stop "
        "(default $EFFLAB_QUIET_WAIT_S or 120)",
    )
    g.add_argument(
        "--no-quiet-wait",
        dest="quiet_wait",
        action="store_const",
        const=0.0,
        help="never wait for a quieter machine (timings may come out contended)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds >= 0, found {text!r}"
        ) from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, found {text}")
    return v


def run_options(args: argparse.Namespace, repo: Path) -> RunOptions:
    """The RunOptions of a parsed command line (resolves `auto` and the profile once)."""
    if getattr(args, "cores", 1) < 1:
        raise BadInput("--cores", "$", "a whole number >= 1", args.cores)
    from efflab.workflow.remeasure import QuietWaiter  # planner imports: not at CLI start

    name = getattr(args, "profile", None)
    return RunOptions(
        cores=args.cores,
        runtime=base.resolve(args.runtime),
        quick=bool(getattr(args, "quick", False)),
        profile=resolve_profile(repo, name) if name else None,
        fresh=bool(getattr(args, "fresh", False)),
        batch_seconds=_batch_seconds(getattr(args, "batch_seconds", None)),
        dry_run=bool(getattr(args, "dry_run", False)),
        quiet=bool(getattr(args, "quiet", False) or getattr(args, "json", False)),
        wait=bool(getattr(args, "wait", True)),
        waiter=QuietWaiter(getattr(args, "quiet_wait", None), on_wait=WaitNotice()),
    )


def _batch_seconds(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise BadInput("--batch-seconds", "$", "a number of seconds > 0", value)
    return value
