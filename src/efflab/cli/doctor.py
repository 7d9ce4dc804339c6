"""`efflab doctor`: check the Docker engine and the tools/packages scripts declare;
`--timing`: what on this machine would make timings noisy, and how to fix it."""

from __future__ import annotations

import argparse
import json
import sys

from efflab.cli.common import find_repo
from efflab.core import machine
from efflab.envs import doctor
from efflab.plan.registry import Registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the Docker engine and the tools/packages scripts declare (requires:); "
        "--timing: what would make timings noisy here",
        description="Without options: every external tool the scripts declare. With "
        "--timing: CPU model, virtualisation, governor, turbo, SMT, isolated cores, "
        "hardware counters, valgrind, load (as pyperf's `system show`); each reading ok, "
        "noisy (with how to fix it) or unknown (unreadable here, never guessed). "
        "Exit 1 when anything is noisy.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--timing", action="store_true", help="report what would make timings noisy here"
    )
    p.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="S",
        help="--timing: seconds over which load and steal time are sampled (default 1)",
    )
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.timing:
        return timing(args.json, args.sample)
    reg = Registry.for_repo(find_repo(args.repo))
    req = reg.requirements(trusted_only=True)  # a declared tool is run with its arguments
    for name in reg.untrusted():
        print(f"efflab: doctor: not checking collection {name}'s requires: it is not trusted "
              f"(efflab repo trust {name})", file=sys.stderr)  # fmt: skip
    return doctor.main(["--json"] if args.json else [], req)


def _show(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def timing(as_json: bool, sample_s: float) -> int:
    if not 0 <= sample_s <= 60:
        from efflab.core.errors import BadInput

        raise BadInput("--sample", "$", "seconds in 0..60", sample_s)
    found = machine.checks(sample_s)
    noisy = [c for c in found if c.status == machine.NOISY]
    if as_json:
        print(json.dumps({"checks": [c.to_json() for c in found], "noisy": len(noisy)}, indent=2))
        return 1 if noisy else 0
    print("efflab doctor --timing: what would make timings noisy on this machine")
    for c in found:
        print(f"  {c.status:<8} {c.name:<22} {_show(c.value)}")
        if c.advice and c.status != machine.OK:
            print(f"  {'':<8} {'':<22} -> {c.advice}")
    unknown = sum(c.status == machine.UNKNOWN for c in found)
    print(
        f"{len(noisy)} noisy, {unknown} unknown: "
        + (
            "timings here need repetitions, pinning (exclusive jobs) and, for exact "
            "comparisons, instruction counts (instrument: perf|cachegrind)"
            if noisy
            else "nothing known to make timings noisy"
        )
    )
    return 1 if noisy else 0
