"""The in-container runner's report (`.inside.json`): written by `runner.run_inside`,
read by the docker runtime.

Why one module: the two sides are one protocol, and the reading side is a trust
boundary — the script can write its folder, so a report is believed only when it is
well formed and agrees with the exit status the engine reports. Stdlib only: the job
process imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from efflab.runtime.failure import SCRIPT, InvocationFailed
from efflab.runtime.outputs import atomic_json
from efflab.runtime.sealed import remove_path

NAME = ".inside.json"
FIELDS = {"exit_code": int, "signal": (str, type(None)), "wall_s": (int, float), "cpu_s": (int, float), "max_rss_mb": (int, float)}  # fmt: skip


def write(folder: Path, report: dict[str, Any]) -> None:
    atomic_json(folder / NAME, report)


def clear(folder: Path) -> None:
    (folder / NAME).unlink(missing_ok=True)


def read(folder: Path, code: int) -> dict[str, Any] | None:
    """The report (None when the runner wrote none), removed once read. One that is
    malformed or disagrees with `code` (a script that forged it and killed its runner
    leaves 137, not the forged code) fails as the script's fault, never the verifier's."""
    f = folder / NAME
    if not os.path.lexists(f):
        return None
    try:
        data = json.loads(f.read_bytes()) if f.is_file() and not f.is_symlink() else None
    except (OSError, ValueError):
        data = None
    finally:
        remove_path(f)
    well_formed = isinstance(data, dict) and all(
        isinstance(data.get(k), t) and not isinstance(data.get(k), bool) for k, t in FIELDS.items()
    )
    if not well_formed or data["exit_code"] != code:
        raise InvocationFailed(
            SCRIPT,
            f"container exited with code {code} and a report its runner did not write "
            f"(the script overwrote {NAME} or killed its runner)",
        )
    return data
