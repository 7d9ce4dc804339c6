"""`efflab results import PATH`: bring another machine's results into this project.

A community playground grows by merging: each lab runs efflab, publishes, and one
project imports them all and builds one site. What can be merged, and how:

- run records (`<exp>/runs/<key>.json`) land in `results/<exp>/hosts/<host>/runs/`,
  **always** — a record claiming this machine's hostname too: an imported record never
  passes as a local measurement. Each is marked (`imported`: the source file, the
  sha256 of its bytes as found there, the host it claims: `provenance.imported`, as
  the MLPerf and asv importers mark theirs). The same (key, host) with
  the same content is already here; with other content it is a conflict (exit 2
  naming both files), never an overwrite;
- table versions (`<exp>/tables/v<N>/`, or `<exp>/v<N>/` in a repository written by
  `efflab results publish`) land in `results/<exp>/hosts/<host>/tables/v<N>/`
  (version numbers are per machine); only the manifest, the Parquet table and its CSV
  and Markdown renderings are copied; another content hash under the same version is a
  conflict;
- reproduction reports (`reproductions/<paper>/<n>/`) get the next free number here,
  with `imported.json` naming where they came from; only `verdicts.json`, other JSON
  and raster images are copied — never foreign HTML (the site renders an imported
  report from its verdicts with its own escaping renderer); an identical report is
  skipped.

Everything from elsewhere is hostile (see docs/security.md). The source is read through
`efflab.results.safe_copy` (no link followed, no device read, files and bytes capped),
staged, and every record, manifest and verdicts file is checked with the same checks as
`efflab results check` before anything lands: a bad file or a conflict leaves the
project as it was (exit 2 naming the file, the field, what was expected and found).
Tournament ledgers and the nightly history are not merged: a ledger is one organiser's
hash chain and a nightly baseline is one machine's, by design.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput, WriteFailed
from efflab.core.specio import atomic_write_json, parse_json
from efflab.results import safe_copy
from efflab.results.check import check_record, check_verdicts, check_version
from efflab.results.safe_copy import Budget, Limits

NOT_EXPERIMENTS = layout.NOT_EXPERIMENTS  # one definition of which folders are experiments
VERSION_DIR = re.compile(r"^v[1-9]\d{0,8}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # an experiment or paper folder
RECORD_FILE = re.compile(r"^[0-9a-f]{20}(\.failed)?\.json$")
TABLE_FILES = {"manifest.json", "table.parquet", "table.csv", "table.md"}
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
    left_out: list[str] = field(default_factory=list)  # files not copied (HTML, unknown)
    files_read: int = 0
    bytes_read: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def host_slug(name: str) -> str:
    """A host name as a folder name: safe characters, at most 64 of them."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "unknown"
    if len(slug) > 64:
        slug = slug[:48] + "-" + hashlib.sha256(name.encode()).hexdigest()[:15]
    return slug


def record_host(rec: dict[str, Any]) -> str:
    prov = rec.get("provenance") if isinstance(rec, dict) else None
    host = prov.get("host") if isinstance(prov, dict) else None
    name = host.get("hostname") if isinstance(host, dict) else None
    return str(name)[:200] if name else "unknown"


@dataclass
class _Source:
    root: Path  # the folder holding <exp>/ dirs
    kind: str
    label: str  # host label when nothing in the source names one


def _entries(root: Path, rel: str = "") -> dict[str, str]:
    """name -> 'dir' | 'file' below root, hidden names left out; links refused."""
    return {n: k for n, k in safe_copy.entries(root, rel) if not n.startswith(".")}


def detect(path: Path, label: str | None = None) -> _Source:
    """Where the experiments are in PATH; BadInput (exit 2) when it is not efflab results."""
    path = path.resolve()
    if not path.is_dir():
        raise BadInput(path, "$", EXPECTED, "no such folder" if not path.exists() else "a file")
    top = _entries(path)
    if top.get("results") == "dir" and top.get("Snakefile") == "file":
        path = path / "results"  # a whole project: its results/
        top = _entries(path)
    dirs = [n for n, k in top.items() if k == "dir"]
    published = (path / ".git").exists() and any(
        VERSION_DIR.match(v) and _entries(path, f"{e}/{v}").get("manifest.json") == "file"
        for e in dirs
        if e not in NOT_EXPERIMENTS
        for v, k in _entries(path, e).items()
        if k == "dir"
    )
    if published:
        return _Source(path, "published", label or path.name)
    has = "reproductions" in dirs or any(
        {"runs", "tables"} & {n for n, k in _entries(path, e).items() if k == "dir"}
        for e in dirs
        if e not in NOT_EXPERIMENTS
    )
    if not has:
        found = sorted(top)[:8]
        raise BadInput(path, "$", EXPECTED, f"entries {found}" if found else "an empty folder")
    return _Source(path, "results", label or path.name)


@dataclass
class _Staged:
    """What was read, checked and staged, before anything lands in results/."""

    records: list[tuple[str, Path, Path, dict[str, Any]]] = field(default_factory=list)
    tables: list[tuple[str, Path, Path, dict[str, Any]]] = field(default_factory=list)
    reports: list[tuple[str, Path, Path, bytes]] = field(default_factory=list)


def _name(shown: Path, name: str, what: str) -> None:
    if not NAME.match(name):
        raise BadInput(shown, "$", f"{what} folder named [A-Za-z0-9][A-Za-z0-9_.-]*", name)


def import_results(
    repo: Path, path: Path, label: str | None = None, limits: Limits | None = None
) -> Imported:
    """Merge PATH into `repo`'s results/ (see the module docstring); all or nothing."""
    src = detect(path, label)
    res = Imported(source=str(src.root), kind=src.kind)
    budget = Budget(limits or Limits.from_env())
    results = layout.results_dir(repo)
    results.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=results, prefix=".import-"))
    try:
        staged = _Staged()
        for exp, kind in _entries(src.root).items():
            if kind == "dir" and exp not in NOT_EXPERIMENTS:
                _stage_experiment(src, exp, stage, budget, staged, res)
        if _entries(src.root).get("reproductions") == "dir":
            _stage_reports(src, stage, budget, staged, res)
        res.files_read, res.bytes_read = budget.files, budget.bytes
        moves = _plan(repo, src, staged, res)
        _land(moves)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return res


def _stage_experiment(
    src: _Source, exp: str, stage: Path, budget: Budget, staged: _Staged, res: Imported
) -> None:
    root = src.root
    sub = _entries(root, exp)
    has_versions = any(VERSION_DIR.match(n) and k == "dir" for n, k in sub.items())
    if not ({"runs", "tables"} & set(sub) or (src.kind == "published" and has_versions)):
        return
    _name(root / exp, exp, "an experiment")
    if sub.get("runs") == "dir":
        for rel in safe_copy.walk(root, f"{exp}/runs", budget):
            name = rel.rsplit("/", 1)[-1]
            if rel.count("/") != 2 or not RECORD_FILE.match(name):
                if name.endswith(".json") and rel.count("/") == 2:
                    raise BadInput(root / rel, "$", "a run record named <20 hex digit key>.json",
                                   name)  # fmt: skip
                res.left_out.append(str(root / rel))
                continue
            raw = safe_copy.read(root, rel, budget)
            f = stage / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(raw)
            rec = check_record(f, root / rel)
            if rec["experiment"] != exp:
                raise BadInput(root / rel, "$.experiment", f"{exp!r} (its folder)", rec["experiment"])  # fmt: skip
            rec["provenance"]["imported"] = {
                "format": "efflab",
                "source": str(root / rel),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "claimed_host": record_host(rec),
            }
            staged.records.append((exp, root / rel, f, rec))
    vroot = f"{exp}/tables" if src.kind == "results" else exp
    if src.kind == "results" and sub.get("tables") != "dir":
        return
    for v, k in _entries(root, vroot).items():
        if k != "dir" or not VERSION_DIR.match(v):
            continue
        shown = root / vroot / v
        d = stage / exp / "tables" / v
        d.mkdir(parents=True)
        for rel in safe_copy.walk(root, f"{vroot}/{v}", budget):
            name = rel[len(vroot) + len(v) + 2 :]
            if name not in TABLE_FILES:
                res.left_out.append(str(root / rel))
                continue
            safe_copy.copy_file(root, rel, d / name, budget)
        man = check_version(d, shown)
        if man.get("experiment") not in (None, exp):
            raise BadInput(shown / "manifest.json", "$.experiment", f"{exp!r} (its folder)",
                           man["experiment"])  # fmt: skip
        staged.tables.append((exp, shown, d, man))


def _stage_reports(
    src: _Source, stage: Path, budget: Budget, staged: _Staged, res: Imported
) -> None:
    root = src.root
    for paper, k in _entries(root, "reproductions").items():
        if k != "dir":
            continue
        _name(root / "reproductions" / paper, paper, "a paper")
        for n, k2 in _entries(root, f"reproductions/{paper}").items():
            if k2 != "dir" or not n.isdigit():
                continue
            rel = f"reproductions/{paper}/{n}"
            files = safe_copy.walk(root, rel, budget)
            if f"{rel}/verdicts.json" not in files:
                continue
            d = stage / rel
            for f in files:
                inner = f[len(rel) + 1 :]
                data = safe_copy.read(root, f, budget)
                if f.endswith(".json"):
                    parse_json(data, root / f, "a JSON file")
                elif not safe_copy.is_image(f, data):
                    res.left_out.append(str(root / f))  # HTML, SVG, Markdown, anything else
                    continue
                (d / inner).parent.mkdir(parents=True, exist_ok=True)
                (d / inner).write_bytes(data)
            v = check_verdicts(d / "verdicts.json", root / rel / "verdicts.json")
            if v["paper"] != paper:
                raise BadInput(root / rel / "verdicts.json", "$.paper", f"{paper!r} (its folder)",
                               v["paper"])  # fmt: skip
            staged.reports.append((paper, root / rel, d, (d / "verdicts.json").read_bytes()))


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    """A record without its import mark (the same record imported twice is the same)."""
    prov = {k: v for k, v in rec["provenance"].items() if k != "imported"}
    return {**rec, "provenance": prov}


def _plan(repo: Path, src: _Source, staged: _Staged, res: Imported) -> list[tuple[Path, Path]]:
    """(staged path, target) moves; conflicts found here, before anything moves."""
    moves: list[tuple[Path, Path]] = []
    hosts: set[str] = set()
    key_hosts: dict[tuple[str, str], str] = {}
    exps: list[str] = []
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for exp, shown, f, rec in staged.records:
        host = rec["provenance"]["imported"]["claimed_host"]
        hosts.add(host)
        key_hosts[(exp, rec["key"])] = host
        target = _host_dir(repo, exp, host) / "runs" / f.name
        exps.append(exp)
        if target.exists():
            try:
                mine = check_record(target)
            except BadInput:
                mine = None
            if mine is not None and _strip(mine) == _strip(rec):
                res.records_unchanged += 1
            elif f.name.endswith(".failed.json"):
                res.failed_records_kept += 1  # a latest failed attempt: ours stays
            else:
                raise BadInput(shown, "$", f"the same content as {target} (same key "
                               f"{rec['key']} and host {host})", "a different record",
                               "records are never overwritten: remove one of the two files")  # fmt: skip
            continue
        rec["provenance"]["imported"]["at"] = at
        atomic_write_json(f, rec)
        moves.append((f, target))
        res.records_added += 1
    table_host: dict[str, str] = {}
    for exp, shown, d, man in staged.tables:
        c = Counter(key_hosts[(exp, k)] for k in man.get("keys") or [] if (exp, k) in key_hosts)
        if c:
            table_host[exp] = c.most_common(1)[0][0]
        host = table_host.get(exp) or src.label
        hosts.add(host)
        exps.append(exp)
        target = _host_dir(repo, exp, host) / "tables" / d.name
        if (target / "manifest.json").exists():
            try:
                theirs = check_version(target).get("content_hash")
            except BadInput:
                theirs = None
            if theirs != man["content_hash"]:
                raise BadInput(shown / "manifest.json", "$.content_hash",
                               f"{str(theirs)[:12]} as in {target / 'manifest.json'} (same version, same host)",
                               man["content_hash"][:12], "table versions are never overwritten")  # fmt: skip
            res.tables_unchanged += 1
            continue
        moves.append((d, target))
        res.tables_added += 1
    for paper, shown, d, raw in staged.reports:
        here = layout.reports_dir(repo, paper)
        mine = set()
        for f in here.glob("*/verdicts.json") if here.is_dir() else []:
            try:
                mine.add(f.read_bytes())
            except OSError:
                continue
        if raw in mine:
            res.reports_unchanged += 1
            continue
        data = json.loads(raw)
        host = _report_host(data, staged, key_hosts) or src.label
        meta = {
            "source": str(shown),
            "host": host,
            "original": f"{paper}/{shown.name}",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "at": at,
        }
        (d / "imported.json").write_text(json.dumps(meta, indent=2) + "\n")
        moves.append((d, here / "next"))  # numbered when it lands
        res.reports_added += 1
    res.hosts = sorted(hosts)
    res.experiments = sorted(set(exps))
    return moves


def _report_host(
    verdicts: dict[str, Any], staged: _Staged, key_hosts: dict[tuple[str, str], str]
) -> str | None:
    mans = {(exp, man["version"]): man for exp, _, _, man in staged.tables}
    for e in verdicts.get("experiments") or []:
        man = mans.get((e["experiment"], e.get("table_version")))
        for k in (man or {}).get("keys") or []:
            if (e["experiment"], k) in key_hosts:
                return key_hosts[(e["experiment"], k)]
    return None


def _host_dir(repo: Path, exp: str, host: str) -> Path:
    return layout.hosts_dir(repo, exp) / host_slug(host)


def _land(moves: list[tuple[Path, Path]]) -> None:
    """Rename each staged file or folder into place; undo the ones done if one fails."""
    done: list[tuple[Path, Path]] = []
    try:
        for staged, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name == "next":  # a report: the next free number
                target = _next_number(staged, target.parent)
            elif staged.is_dir():
                staged.rename(target)  # an existing non-empty target makes this fail
            else:
                os.link(staged, target)  # never replaces a file that appeared meanwhile
                staged.unlink()
            done.append((staged, target))
    except OSError as exc:
        for staged, target in reversed(done):
            try:
                target.rename(staged)
            except OSError:
                pass
        raise WriteFailed(f"{target}: {exc.strerror or exc}; nothing was imported") from None


def _next_number(staged: Path, root: Path) -> Path:
    while True:  # another writer may take a number first
        nums = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
        target = root / str(max(nums, default=0) + 1)
        try:
            staged.rename(target)
            return target
        except OSError:
            if not target.exists():
                raise
