"""`efflab doctor`: check every external tool and package the project's scripts declare."""

from __future__ import annotations

import argparse

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
    req = Registry.for_repo(find_repo(args.repo)).requirements()
    return doctor.main(["--json"] if args.json else [], req)
