"""The one error type users see for bad input: file, JSON path, expected, found.

Every loader raises `BadInput`; the CLI turns it into one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def json_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """Render a jsonschema-style path deque as `$.grid.rate[1]`."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """ "did you mean 'x' or 'y'?" for the candidates close to `word` ("" when none is)."""
    close = difflib.get_close_matches(word, list(dict.fromkeys(candidates)), n=n, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(kind: str, name: str, files: list[Path], list_cmd: str = "") -> BadInput:
    """The error for a name that names none of `files` (experiments, papers,
    tournaments): what may have been meant, then the newest names (the user's own,
    just written, before the shipped ones), not an alphabetical wall."""

    def mtime(f: Path) -> float:
        try:
            return f.stat().st_mtime
        except OSError:
            return 0.0

    newest = [f.stem for f in sorted(files, key=lambda f: (-mtime(f), f.stem))]
    shown = ", ".join(newest[:8]) + (f", … ({len(newest)} in all)" if len(newest) > 8 else "")
    hint = "; ".join(
        x for x in (did_you_mean(name, newest), f"`{list_cmd}` lists them" if list_cmd else "") if x
    )
    folder = files[0].parent if files else None
    return BadInput(folder, "$", f"{kind} (newest first: {shown or 'none'})", name, hint)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class BadInput(Exception):
    """Bad user input. `path` is a JSON path inside `file` ("$" for the whole file)."""

    file: str | Path | None
    path: str
    expected: str
    found: Any = None
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        if self.path not in ("", "$"):  # "$" alone (the whole file) says nothing
            where += f"{self.path}: "
        msg = f"{where}expected {self.expected}, found {_short(self.found)}"
        return msg + (f" ({self.hint})" if self.hint else "")


class RunFailed(Exception):
    """A check failed at run time (a script failed, a claim did not hold): exit 1."""


class WriteFailed(RunFailed):
    """The disk refused a write (full, read-only): exit 1, one line naming the file."""
