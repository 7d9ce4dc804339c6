"""`efflab results check [EXP] [--repair]`: find corrupt results files, set them aside.

Why: a truncated run record or table (a full disk, a crash of another tool, a bad
copy) makes every later run or view of that experiment stop with that file's error;
this finds them all at once and, with --repair, moves each bad file (or a whole bad
table version) to `results/<exp>/quarantine/<stamp>/` keeping its relative path. It
never deletes: the next run rebuilds a set-aside record from the invocation's
outputs, and a table version from the records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import limit, read_json_file, validate
from efflab.results import tables


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
    return layout.experiment_names(repo)


def _problem(exc: BadInput) -> tuple[str, str]:
    return exc.path, f"expected {exc.expected}, found {exc.found!r}"


def check_record(f: Path, shown: str | Path | None = None) -> dict:
    """The run record in `f`, or BadInput naming `shown` (default: f): the schema, and
    the key its file is named for. The same check guards `results import`."""
    shown = shown or f
    rec = read_json_file(f, "a JSON run record", shown=shown)
    validate(rec, "run-record", shown)
    key = f.name.removesuffix(".failed.json").removesuffix(".json")
    if rec["key"] != key:
        raise BadInput(shown, "$.key", f"the key the file is named for ({key!r})", rec["key"])
    return rec


def record_problem(f: Path) -> tuple[str, str] | None:
    """(JSON path, problem) of a bad run record file, or None."""
    try:
        check_record(f)
    except BadInput as exc:
        return _problem(exc)
    return None


def check_version(d: Path, shown: str | Path | None = None) -> dict:
    """The manifest of the table version folder `d`, or BadInput naming the file under
    `shown` (default: d): the schema, version = folder name, the Parquet's rows."""
    shown = Path(shown or d)
    man = read_json_file(d / "manifest.json", "a table manifest", shown=shown / "manifest.json")
    validate(man, "table-manifest", shown / "manifest.json")
    if f"v{man['version']}" != d.name:
        raise BadInput(shown / "manifest.json", "$.version", f"{d.name[1:]} (the folder's number)",
                       man["version"])  # fmt: skip
    try:  # the footer first: what decompressing would cost, before doing it
        meta = pq.ParquetFile(d / "table.parquet").metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        cap = limit("EFFLAB_MAX_TABLE_BYTES")
        if size > cap:
            raise BadInput(shown / "table.parquet", "$", f"a table of at most {cap} bytes uncompressed",
                           f"{size} bytes", "raise EFFLAB_MAX_TABLE_BYTES to allow it")  # fmt: skip
        table = pq.read_table(d / "table.parquet")
    except BadInput:
        raise
    except (OSError, ValueError, Exception) as exc:  # pyarrow raises its own kinds
        raise BadInput(shown / "table.parquet", "$", "a readable Parquet table",
                       str(exc)[:120]) from None  # fmt: skip
    rows = table.num_rows
    _check_columns(table.schema, man, shown / "table.parquet")
    if rows != man["rows"]:
        raise BadInput(shown / "table.parquet", "$", f"{man['rows']} rows (as its manifest says)",
                       rows)  # fmt: skip
    return man


def _check_columns(schema: pa.Schema, man: dict, shown: Path) -> None:
    """The Parquet's columns are the manifest's, with the statistics a view reads typed
    as efflab writes them (text for metric/unit/better, numbers for the rest)."""
    if schema.names != man["columns"]:
        raise BadInput(shown, "$.columns", f"the manifest's columns {man['columns']}"[:200], schema.names)  # fmt: skip
    for col in tables.STAT_COLUMNS:
        if col not in schema.names:
            raise BadInput(shown, f"$.columns.{col}", "a column of every efflab table", "none")
        t = schema.field(col).type
        text = col in ("metric", "unit", "better")
        ok = pa.types.is_null(t) or (
            pa.types.is_string(t) or pa.types.is_large_string(t)
            if text
            else pa.types.is_integer(t) or pa.types.is_floating(t)
        )
        if not ok:
            raise BadInput(shown, f"$.columns.{col}", "text" if text else "a number", str(t))


def version_problem(d: Path) -> tuple[str, str, str] | None:
    """(file, path, problem) of a bad table version folder, or None."""
    try:
        check_version(d)
    except BadInput as exc:
        name = Path(str(exc.file)).name if exc.file else "manifest.json"
        if exc.found == "no such file":
            return name, "$", f"no {name}"
        return name, *_problem(exc)
    return None


def check_verdicts(f: Path, shown: str | Path | None = None) -> dict:
    """A reproduction's `verdicts.json`, or BadInput naming `shown` (default: f)."""
    data = read_json_file(f, "a reproduction's verdicts", shown=shown)
    validate(data, "verdicts", shown or f)
    return data


def verdicts_problem(f: Path) -> tuple[str, str] | None:
    """(JSON path, problem) of a bad reproduction `verdicts.json`, or None."""
    try:
        check_verdicts(f)
    except BadInput as exc:
        return _problem(exc)
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
            bad = record_problem(f)
            if bad:
                found.append((f, Problem(str(f.relative_to(repo)), bad[0], bad[1])))
        tables = layout.tables_dir(repo, exp)
        for d in sorted(tables.glob("v*")) if tables.is_dir() else []:
            if not (d.is_dir() and d.name[1:].isdigit()):
                continue
            rep.checked += 1
            bad = version_problem(d)
            if bad:
                found.append((d, Problem(str((d / bad[0]).relative_to(repo)), bad[1], bad[2])))
        for target, prob in found:
            if repair:
                dest = quarantine / target.relative_to(exp_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                target.rename(dest)  # same file system: a move, never a copy-and-delete
                prob.moved_to = str(dest.relative_to(repo))
            rep.problems.append(prob)
    if names is None:
        _check_reports(repo, rep, stamp, repair)
    return rep


def _check_reports(repo: Path, rep: Report, stamp: str, repair: bool) -> None:
    """Each reproduction report's verdicts.json (a bad one: its folder set aside)."""
    root = layout.results_dir(repo) / "reproductions"
    for paper in sorted(root.iterdir()) if root.is_dir() else []:
        if not paper.is_dir() or paper.is_symlink():
            continue
        for d in sorted(p for p in paper.iterdir() if p.name.isdigit() and p.is_dir()):
            rep.checked += 1
            bad = verdicts_problem(d / "verdicts.json")
            if bad is None:
                continue
            prob = Problem(str((d / "verdicts.json").relative_to(repo)), bad[0], bad[1])
            if repair:
                dest = paper / "quarantine" / stamp / d.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                d.rename(dest)
                prob.moved_to = str(dest.relative_to(repo))
            rep.problems.append(prob)
