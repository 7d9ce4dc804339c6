"""`efflab doctor`: check every external tool and package the project's scripts declare."""

from __future__ import annotations

import argparse
import sys

from efflab.cli.common import find_repo
from efflab.envs import doctor
from efflab.plan.registry import Registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the Docker engine and the tools/packages scripts declare (requires:)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    reg = Registry.for_repo(find_repo(args.repo))
    req = reg.requirements(trusted_only=True)  # a declared tool is run with its arguments
    for name in reg.untrusted():
        print(f"efflab: doctor: not checking collection {name}'s requires: it is not trusted "
              f"(efflab repo trust {name})", file=sys.stderr)  # fmt: skip
    return doctor.main(["--json"] if args.json else [], req)
