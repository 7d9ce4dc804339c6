"""`efflab doctor`: check every external tool efflab's scripts need."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check external tools (docker, yosys, nextpnr, LoadGen, ...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from efflab.envs import doctor

    return doctor.main(["--json"] if args.json else [])
