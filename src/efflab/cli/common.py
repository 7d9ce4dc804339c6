"""Helpers shared by CLI commands: repo discovery, output formats, progress."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput


def find_repo(explicit: str | None = None) -> Path:
    """The project root: --repo, $EFFLAB_REPO, or the nearest parent with a Snakefile."""
    if explicit or os.environ.get("EFFLAB_REPO"):
        p = Path(explicit or os.environ["EFFLAB_REPO"]).resolve()
        if not (p / "Snakefile").is_file():
            raise BadInput(p, "$", "an efflab project root containing a Snakefile", "none")
        return p
    here = Path.cwd().resolve()
    for p in [here, *here.parents]:
        if (p / "Snakefile").is_file() and (p / "workflows").is_dir():
            return p
    raise BadInput(
        here,
        "$",
        "to be inside an efflab project (a folder with Snakefile and workflows/)",
        "neither here nor in any parent",
        "use --repo PATH",
    )


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """--set name=value (value parsed as YAML: 3 -> int, true -> bool, text -> str)."""
    import yaml

    out: dict[str, Any] = {}
    for i, item in enumerate(items or []):
        if "=" not in item:
            raise BadInput("--set", f"$[{i}]", "name=value", item)
        k, v = item.split("=", 1)
        try:
            val = yaml.safe_load(v)
        except yaml.YAMLError:
            val = v
        # YAML reads 0x4 as hex and 1_000 as 1000; a size like "0x4" is meant as text
        if (
            isinstance(val, int)
            and not isinstance(val, bool)
            and not re.fullmatch(r"[-+]?\d+", v.strip())
        ):
            val = v
        out[k.strip()] = val
    return out


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


class WaitNotice:
    """The live line of a wait for a quieter machine, on stderr: rewritten in place on
    a terminal (in the progress bar's own line while one is shown), one line every
    LINE_EVERY_S seconds elsewhere (logs, CI). Never silent: a wait is the one thing a
    person must be able to tell from a hang."""

    LINE_EVERY_S = 10.0

    def __init__(self) -> None:
        self._last_line = -1e9
        self._shown = False

    @staticmethod
    def text(busy: float, waited: float, allowed: float) -> str:
        return (
            f"waiting for a quieter machine: others use {busy:.1f} cores "
            f"({waited:.0f}/{allowed:.0f} s; --no-quiet-wait to skip)"
        )

    def __call__(self, busy: float, waited: float, allowed: float) -> None:
        line = self.text(busy, waited, allowed)
        bar = Progress.current
        if bar is not None and bar.live:
            bar.note(line)
            return
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[Kefflab: {line}")
            if waited >= allowed:
                sys.stderr.write("\n")
            sys.stderr.flush()
            return
        if waited - self._last_line >= self.LINE_EVERY_S or waited >= allowed or not self._shown:
            self._last_line, self._shown = waited, True
            print(f"efflab: {line}", file=sys.stderr, flush=True)


class Progress:
    """rich progress bar on stderr (quiet with -q or when stderr is not a terminal)."""

    current: Progress | None = None  # the bar on screen now (a wait shows in its line)

    def __init__(self, description: str, quiet: bool = False):
        self.quiet = quiet
        self.description = description
        self._p = None
        self._task = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            console = Console(stderr=True)
            self._p = Bar(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
                disable=not console.is_terminal,
            )
            self._p.__enter__()
            self._task = self._p.add_task(self.description, total=None)
            if not console.is_terminal:
                print(f"efflab: {self.description} ...", file=sys.stderr)
        Progress.current = self
        return self

    @property
    def live(self) -> bool:
        return self._p is not None and self._p.console.is_terminal

    def note(self, text: str) -> None:
        """Show `text` in the bar's line (a wait); the next update restores the name."""
        if self._p is not None:
            self._p.update(self._task, description=f"{self.description}: {text}")

    def update(self, done: int, total: int) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=done, total=total, description=self.description)
            if not self._p.console.is_terminal:
                print(f"efflab: {done}/{total} jobs done", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if Progress.current is self:
            Progress.current = None
        if self._p is not None:
            self._p.__exit__(*exc)
