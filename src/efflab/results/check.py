"""`efflab results check [EXP] [--repair]`: find corrupt results files, set them aside.

Why: a truncated run record or table (a full disk, a crash of another tool, a bad
copy) makes every later run or view of that experiment stop with that file's error;
this finds them all at once and, with --repair, moves each bad file (or a whole bad
table version) to `results/<exp>/quarantine/<stamp>/` keeping its relative path. It
never deletes: the next run rebuilds a set-aside record from the invocation's
outputs, and a table version from the records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import validate

VIEW_DIRS = {"reproductions", "tournaments", "nightly"}  # results/ folders that are not experiments


@dataclass
class Problem:
    file: str  # relative to the repo
    path: str  # JSON path inside it ("$" for the whole file)
    problem: str
    moved_to: str | None = None


@dataclass
class Report:
    experiments: list[str] = field(default_factory=list)
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.moved_to for p in self.problems)


def experiments(repo: Path) -> list[str]:
    root = layout.results_dir(repo)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir()
        and d.name not in VIEW_DIRS
        and ((d / "runs").is_dir() or (d / "tables").is_dir())
    )


def _record_problem(f: Path) -> tuple[str, str] | None:
    try:
        rec = json.loads(f.read_bytes())
    except (OSError, ValueError) as exc:
        return "$", f"corrupt JSON: {exc}"
    try:
        validate(rec, "run-record", f)
    except BadInput as exc:
        return exc.path, f"expected {exc.expected}, found {exc.found!r}"
    key = f.name.removesuffix(".failed.json").removesuffix(".json")
    if rec["key"] != key:
        return "$.key", f"key {rec['key']!r} in a file named for {key!r}"
    return None


def _version_problem(d: Path) -> tuple[str, str, str] | None:
    """(file, path, problem) of a bad table version folder, or None."""
    man = d / "manifest.json"
    try:
        data = json.loads(man.read_bytes())
    except FileNotFoundError:
        return man.name, "$", "no manifest.json"
    except (OSError, ValueError) as exc:
        return man.name, "$", f"corrupt JSON: {exc}"
    for name in ("content_hash", "version", "created", "rows", "columns"):
        if not isinstance(data, dict) or name not in data:
            return man.name, f"$.{name}", "field missing"
    if data["version"] != int(d.name[1:]):
        return man.name, "$.version", f"version {data['version']} in folder {d.name}"
    try:
        rows = pq.read_table(d / "table.parquet").num_rows
    except (OSError, ValueError, Exception) as exc:  # pyarrow raises its own kinds
        return "table.parquet", "$", f"unreadable Parquet: {str(exc)[:120]}"
    if rows != data["rows"]:
        return "table.parquet", "$", f"{rows} rows, manifest says {data['rows']}"
    return None


def check(repo: Path, names: list[str] | None = None, repair: bool = False) -> Report:
    rep = Report(experiments=names or experiments(repo))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for exp in rep.experiments:
        exp_dir = layout.experiment_dir(repo, exp)
        quarantine = exp_dir / "quarantine" / stamp
        found: list[tuple[Path, Problem]] = []
        runs = layout.runs_dir(repo, exp)
        for f in sorted(runs.glob("*.json")) if runs.is_dir() else []:
            rep.checked += 1
            bad = _record_problem(f)
            if bad:
                found.append((f, Problem(str(f.relative_to(repo)), bad[0], bad[1])))
        tables = layout.tables_dir(repo, exp)
        for d in sorted(tables.glob("v*")) if tables.is_dir() else []:
            if not (d.is_dir() and d.name[1:].isdigit()):
                continue
            rep.checked += 1
            bad = _version_problem(d)
            if bad:
                found.append((d, Problem(str((d / bad[0]).relative_to(repo)), bad[1], bad[2])))
        for target, prob in found:
            if repair:
                dest = quarantine / target.relative_to(exp_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                target.rename(dest)  # same file system: a move, never a copy-and-delete
                prob.moved_to = str(dest.relative_to(repo))
            rep.problems.append(prob)
    return rep
