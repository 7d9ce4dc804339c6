"""The one error type users see for bad input: file, JSON path, expected, found.

Every loader raises `BadInput`; the CLI turns it into one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def json_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """Render a jsonschema-style path deque as `$.grid.rate[1]`."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


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
        msg = f"{where}{self.path}: expected {self.expected}, found {_short(self.found)}"
        return msg + (f" ({self.hint})" if self.hint else "")


class RunFailed(Exception):
    """A check failed at run time (a script failed, a claim did not hold): exit 1."""


class WriteFailed(RunFailed):
    """The disk refused a write (full, read-only): exit 1, one line naming the file."""
