"""`efflab results import PATH`: bring another machine's results into this project.

A community playground grows by merging: each lab runs efflab, publishes, and one
project imports them all and builds one site. What can be merged, and how:

- run records (`<exp>/runs/<key>.json`) are merged **by key and host**: a record of
  this machine's host lands in `results/<exp>/runs/`, one of another host in
  `results/<exp>/hosts/<host>/runs/`. The same (key, host) with the same content is
  already here; with different content it is a conflict (exit 2 naming both files),
  never an overwrite;
- table versions (`<exp>/tables/v<N>/`, or `<exp>/v<N>/` in a repository written by
  `efflab results publish`) land in `results/<exp>/hosts/<host>/tables/v<N>/`
  (version numbers are per machine); a version already there with another content
  hash is a conflict;
- reproduction reports (`reproductions/<paper>/<n>/`) get the next free number here,
  with `imported.json` naming where they came from; an identical report is skipped.

Everything is checked before anything is written, so a conflict leaves the project
as it was. Tournament ledgers and the nightly history are not merged: a ledger is one
organiser's hash chain and a nightly baseline is one machine's, by design.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_json, validate
from efflab.results.provenance import host_info

NOT_EXPERIMENTS = {"reproductions", "tournaments", "nightly", "site", "site-screenshots"}
VERSION_DIR = re.compile(r"^v\d+$")
EXPECTED = (
    "an efflab results folder (<exp>/runs/<key>.json, <exp>/tables/v<N>/, "
    "reproductions/<paper>/<n>/) or a results repository written by `efflab results publish`"
)


@dataclass
class Imported:
    """What one import did, per kind: added (new here) and unchanged (already here)."""

    source: str
    kind: str  # results | published
    hosts: list[str] = field(default_factory=list)
    records_added: int = 0
    records_unchanged: int = 0
    failed_records_kept: int = 0
    tables_added: int = 0
    tables_unchanged: int = 0
    reports_added: int = 0
    reports_unchanged: int = 0
    experiments: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def host_slug(name: str) -> str:
    """A host name as a folder name (hostnames are already close to safe)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "unknown"


def record_host(rec: dict[str, Any]) -> str:
    return str(((rec.get("provenance") or {}).get("host") or {}).get("hostname") or "unknown")


@dataclass
class _Source:
    root: Path  # the folder holding <exp>/ dirs
    kind: str
    label: str  # host label when nothing in the source names one


def detect(path: Path, label: str | None = None) -> _Source:
    """Where the experiments are in PATH; BadInput (exit 2) when it is not efflab results."""
    path = path.resolve()
    if not path.is_dir():
        raise BadInput(path, "$", EXPECTED, "no such folder" if not path.exists() else "a file")
    if (path / "results").is_dir() and (path / "Snakefile").is_file():
        path = path / "results"  # a whole project: its results/
    published = (path / ".git").exists() and any(
        VERSION_DIR.match(v.name) and (v / "manifest.json").is_file()
        for e in _dirs(path)
        for v in _dirs(e)
    )
    if published:
        return _Source(path, "published", label or path.name)
    has = (
        any(
            (e / "runs").is_dir() or (e / "tables").is_dir()
            for e in _dirs(path)
            if e.name not in NOT_EXPERIMENTS
        )
        or (path / "reproductions").is_dir()
    )
    if not has:
        found = sorted(p.name for p in path.iterdir())[:8]
        raise BadInput(path, "$", EXPECTED, f"entries {found}" if found else "an empty folder")
    return _Source(path, "results", label or path.name)


def _dirs(p: Path) -> list[Path]:
    try:
        return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(file, "$", "a JSON run record", f"unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput(file, "$", "a JSON object", type(data).__name__)
    return data


@dataclass
class _Plan:
    """Copies to make, decided before any is made."""

    records: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    tables: list[tuple[Path, Path]] = field(default_factory=list)
    reports: list[tuple[Path, str, dict[str, Any]]] = field(default_factory=list)


def import_results(repo: Path, path: Path, label: str | None = None) -> Imported:
    """Merge PATH into `repo`'s results/ (see the module docstring); all or nothing."""
    src = detect(path, label)
    res = Imported(source=str(src.root), kind=src.kind)
    me = host_info()["hostname"]
    plan = _Plan()
    hosts: set[str] = set()
    table_host: dict[str, str] = {}  # exp -> host its tables are from
    key_hosts: dict[tuple[str, str], str] = {}  # (exp, key) -> host, to attribute tables
    for exp_dir in _dirs(src.root):
        if exp_dir.name in NOT_EXPERIMENTS:
            continue
        exp = exp_dir.name
        runs = exp_dir / "runs"
        for f in sorted(runs.glob("*.json")) if runs.is_dir() else []:
            rec = _read(f)
            validate(rec, "run-record", f)
            if rec.get("experiment") != exp:
                raise BadInput(f, "$.experiment", repr(exp), rec.get("experiment"))
            host = record_host(rec)
            hosts.add(host)
            key_hosts[(exp, rec["key"])] = host
            base = layout.runs_dir(repo, exp) if host == me else _host_dir(repo, exp, host) / "runs"
            target = base / f.name
            if target.exists():
                mine = _read(target)
                if mine == rec:
                    res.records_unchanged += 1
                elif f.name.endswith(".failed.json"):
                    res.failed_records_kept += 1  # a latest failed attempt: ours stays
                else:
                    raise BadInput(
                        f,
                        "$",
                        f"the same content as {target} (same key {rec['key']} and host {host})",
                        "a different record",
                        "records are never overwritten: remove one of the two files",
                    )
                continue
            plan.records.append((target, rec))
        versions = exp_dir / "tables" if src.kind == "results" else exp_dir
        vdirs = [v for v in _dirs(versions) if VERSION_DIR.match(v.name)]
        if not vdirs:
            if exp in {e for e, _ in key_hosts}:
                res.experiments.append(exp)
            continue
        for v in vdirs:
            man_file = v / "manifest.json"
            if not man_file.is_file():
                raise BadInput(man_file, "$", "a table manifest", "no such file")
            man = _read(man_file)
            if "content_hash" not in man:
                raise BadInput(man_file, "$.content_hash", "the table's content hash", "none")
            host = _tables_host(exp, man, key_hosts, table_host, src.label)
            target = _host_dir(repo, exp, host) / "tables" / v.name
            hosts.add(host)
            if (target / "manifest.json").exists():
                theirs = _read(target / "manifest.json").get("content_hash")
                if theirs != man["content_hash"]:
                    raise BadInput(
                        man_file,
                        "$.content_hash",
                        f"{str(theirs)[:12]} as in {target / 'manifest.json'} (same version, same host)",
                        str(man["content_hash"])[:12],
                        "table versions are never overwritten",
                    )
                res.tables_unchanged += 1
                continue
            plan.tables.append((v, target))
        res.experiments.append(exp)
    _plan_reports(repo, src, plan, res, key_hosts)
    for target, rec in plan.records:
        atomic_write_json(target, rec)
        res.records_added += 1
    for v, target in plan.tables:
        _copy_dir(v, target)
        res.tables_added += 1
    for folder, paper, meta in plan.reports:
        _copy_report(repo, folder, paper, meta)
        res.reports_added += 1
    res.hosts = sorted(hosts)
    return res


def _host_dir(repo: Path, exp: str, host: str) -> Path:
    return layout.hosts_dir(repo, exp) / host_slug(host)


def _tables_host(
    exp: str,
    man: dict[str, Any],
    key_hosts: dict[tuple[str, str], str],
    table_host: dict[str, str],
    label: str,
) -> str:
    """The host whose records formed this version (most of them), else the source label."""
    c = Counter(key_hosts[(exp, k)] for k in man.get("keys") or [] if (exp, k) in key_hosts)
    if c:
        table_host[exp] = c.most_common(1)[0][0]
    return table_host.get(exp) or label


def _plan_reports(
    repo: Path, src: _Source, plan: _Plan, res: Imported, key_hosts: dict[tuple[str, str], str]
) -> None:
    root = src.root / "reproductions"
    for paper_dir in _dirs(root):
        here = layout.reports_dir(repo, paper_dir.name)
        mine = {f.read_bytes() for f in (here.glob("*/verdicts.json") if here.is_dir() else [])}
        for rep in _dirs(paper_dir):
            vf = rep / "verdicts.json"
            if not vf.is_file():
                continue
            raw = vf.read_bytes()
            if raw in mine:
                res.reports_unchanged += 1
                continue
            data = _read(vf)
            host = _report_host(src.root, data, key_hosts) or src.label
            meta = {"source": str(rep), "host": host, "original": f"{paper_dir.name}/{rep.name}"}
            plan.reports.append((rep, paper_dir.name, meta))
            mine.add(raw)


def _report_host(
    root: Path, verdicts: dict[str, Any], key_hosts: dict[tuple[str, str], str]
) -> str | None:
    for e in verdicts.get("experiments") or []:
        v = e.get("table_version")
        man = root / str(e.get("experiment")) / "tables" / f"v{v}" / "manifest.json"
        if v and man.is_file():
            for k in _read(man).get("keys") or []:
                if (e["experiment"], k) in key_hosts:
                    return key_hosts[(e["experiment"], k)]
    return None


def _copy_dir(src: Path, target: Path) -> None:
    """Copy aside, then rename into place: a version folder appears whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-import-"))
    try:
        shutil.copytree(src, tmp / "x")
        (tmp / "x").rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_report(repo: Path, folder: Path, paper: str, meta: dict[str, Any]) -> None:
    root = layout.reports_dir(repo, paper)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-import-"))
    try:
        shutil.copytree(folder, tmp / "x")
        (tmp / "x" / "imported.json").write_text(json.dumps(meta, indent=2) + "\n")
        while True:  # the next free number; another writer may take it first
            nums = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
            n = max(nums, default=0) + 1
            try:
                (tmp / "x").rename(root / str(n))
                return
            except OSError:
                if not (root / str(n)).exists():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
