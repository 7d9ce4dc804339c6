"""What the site knows of one experiment, per machine: its table versions and, per point,
the provenance of the records behind the latest version.

A machine ("source") is this project's own `results/<exp>/` or an imported
`results/<exp>/hosts/<host>/` (`efflab results import`). Plots come from each source's
latest table (already aggregated: median, min, max, n per point), so a page never
embeds raw records; records are read once, only for provenance. A record that cannot
be read is skipped and named (`Skipped`), never fatal: the site must still build.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import read_json_file, validate
from efflab.results import lookup, tables
from efflab.results.importer import record_host

CONTENDED_SHARE = 0.75  # a CPU-bound job that got < 3/4 of a core was waiting for CPU


@dataclass
class Skipped:
    file: str
    reason: str


@dataclass
class PointProvenance:
    """Who measured one point of the latest table, aggregated over its repetitions."""

    label: str
    records: int = 0
    commits: list[str] = field(default_factory=list)
    dirty: bool | None = None
    dirty_files: list[str] = field(default_factory=list)  # hashed by the key, not committed
    hosts: list[str] = field(default_factory=list)
    runtime: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    energy_methods: list[str] = field(default_factory=list)
    contended: int = 0  # repetitions whose cpu_share was below CONTENDED_SHARE
    cpu_share_min: float | None = None
    run_ids: list[str] = field(default_factory=list)


@dataclass
class Source:
    """One machine's tables of an experiment."""

    host: str
    imported: bool
    root: Path  # the folder holding runs/ and tables/
    versions: list[dict[str, Any]] = field(default_factory=list)  # manifests, oldest first
    table: pd.DataFrame | None = None  # latest version
    provenance: dict[str, PointProvenance] = field(default_factory=dict)
    hostinfo: dict[str, Any] = field(default_factory=dict)
    records: int = 0  # records read for this source

    @property
    def latest(self) -> int | None:
        return self.versions[-1]["version"] if self.versions else None

    def table_version(self, v: int) -> pd.DataFrame:
        return pd.read_parquet(self.root / "tables" / f"v{v}" / "table.parquet")


@dataclass
class Experiment:
    name: str
    params: list[str]
    sources: list[Source]
    metrics: list[dict[str, str]]  # name, unit, better (in table order)


def experiment_names(repo: Path) -> list[str]:
    return layout.experiment_names(repo)


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "(single point)"


def read_records(
    folder: Path, skipped: list[Skipped], keys: set[str] | None = None, update: bool = False
):
    """Readable successful records of `folder` (a runs/ folder), from the columnar index
    beside it where it holds them, else from `folder/*.json` (efflab.results.lookup);
    in key order, all of them when `keys` is None; name what is skipped."""
    if not folder.is_dir():
        return
    if keys is None:
        keys = {
            n[:-5]
            for n in os.listdir(folder)
            if n.endswith(".json") and not n.endswith(".failed.json")
        }
    for rec in lookup.load(folder.parent, sorted(keys), _reader(skipped), update):
        why = _problem(rec)
        if why:
            skipped.append(Skipped(str(folder / f"{rec['key']}.json"), why))
            continue
        yield rec


def _reader(skipped: list[Skipped]):
    def read(f: Path) -> dict[str, Any] | None:
        if not f.exists():
            return None
        try:
            rec = read_json_file(f, "a JSON run record")  # capped; a FIFO never blocks
        except BadInput as exc:
            skipped.append(Skipped(str(f), f"{exc.path}: expected {exc.expected}, found {exc.found}"))  # fmt: skip
            return None
        why = _problem(rec)
        if why:
            skipped.append(Skipped(str(f), why))
            return None
        return rec

    return read


def _problem(rec: Any) -> str:
    """What the site cannot use in a record ('' when it is fine)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("point"), dict):
        return "$.point: expected an object"
    if not isinstance(rec.get("metrics"), dict):
        return "$.metrics: expected an object"
    for m, v in rec["metrics"].items():
        if not isinstance(v, dict) or not isinstance(v.get("value"), int | float):
            return f"$.metrics.{m}.value: expected a number"
    if not isinstance(rec.get("provenance", {}), dict):
        return "$.provenance: expected an object"
    return ""


def _manifests(tables_root: Path, skipped: list[Skipped]) -> list[dict[str, Any]]:
    """The readable versions' manifests, oldest first; a version whose manifest does not
    pass `efflab results check`'s schema (`"keys": 5`, no version, another folder's
    number) or has no table beside it is skipped and named, never fatal."""
    out = []
    if not tables_root.is_dir():
        return out
    for d in tables_root.iterdir():
        if not (d.name[:1] == "v" and d.name[1:].isdigit()):
            continue
        f = d / "manifest.json"
        try:
            man = read_json_file(f, "a table manifest")
            validate(man, "table-manifest", f)
            if f"v{man['version']}" != d.name:
                raise BadInput(f, "$.version", f"{d.name[1:]} (its folder)", man["version"])
            if not (d / "table.parquet").is_file():
                raise BadInput(d / "table.parquet", "$", "a table beside the manifest", "none")
            out.append(man)
        except BadInput as exc:
            why = f"{exc.path}: expected {exc.expected}, found {exc.found}"
            skipped.append(Skipped(str(f), f"table version unreadable ({why})"))
    return sorted(out, key=lambda m: m["version"])


def _source(
    repo: Path, exp: str, root: Path, host: str, imported: bool, skipped: list[Skipped]
) -> Source | None:
    mans = _manifests(root / "tables", skipped)
    src = Source(host=host, imported=imported, root=root, versions=mans)
    while src.versions:
        try:
            src.table = src.table_version(src.latest)
            missing = [c for c in tables.STAT_COLUMNS if c not in src.table.columns]
            if missing:  # not an efflab table (an old import took anything)
                src.table = None
                raise ValueError(f"not an efflab table: no column {missing[0]!r}")
            break
        except (OSError, ValueError) as exc:
            skipped.append(Skipped(str(root / "tables" / f"v{src.latest}"), str(exc)))
            src.versions.pop()
    keys = set(src.versions[-1].get("keys") or []) if src.versions else None
    hosts: Counter[str] = Counter()
    own = not imported  # this project's index may grow; an imported host's is left alone
    # the table's parameter order (records are stored with sorted keys): a point's
    # provenance label must be the label its plotted row has
    order = (
        # the table's parameter columns under the inputs' own names (a column `param_n`
        # is the input `n`), so provenance labels order keys as the plotted rows do
        [tables.input_name(c) for c in src.table.columns if c not in tables.STAT_COLUMNS]
        if src.table is not None
        else []
    )
    for rec in read_records(root / "runs", skipped, keys or None, update=own):
        src.records += 1
        h = record_host(rec)
        hosts[h] += 1
        if not src.hostinfo:
            prov = rec.get("provenance") or {}
            src.hostinfo = {**(prov.get("host") or {}), "energy_method": prov.get("energy_method")}
        _add_provenance(src.provenance, rec, order)
    if hosts and not imported:
        src.host = hosts.most_common(1)[0][0]
    if src.table is None and not src.records:
        return None
    return src


def _add_provenance(
    acc: dict[str, PointProvenance], rec: dict[str, Any], order: list[str] | None = None
) -> None:
    point = rec["point"]
    if order:
        point = {**{k: point[k] for k in order if k in point}, **point}
    label = point_label(point)
    p = acc.setdefault(label, PointProvenance(label))
    prov = rec.get("provenance") or {}
    git = prov.get("git") or {}
    p.records += 1
    _once(p.commits, git.get("commit") or "unknown")
    if git.get("dirty"):
        p.dirty = True
        files = git.get("dirty_files")
        for f in files if isinstance(files, list) else []:
            if isinstance(f, str):
                _once(p.dirty_files, f)
    elif p.dirty is None and git.get("dirty") is False:
        p.dirty = False
    _once(p.hosts, record_host(rec))
    _once(p.runtime, prov.get("runtime") or "?")
    if prov.get("image"):
        _once(p.images, prov["image"])
    if prov.get("env"):
        _once(p.env, prov["env"])
    _once(p.energy_methods, prov.get("energy_method") or "unknown")
    share = prov.get("cpu_share")
    if isinstance(share, int | float):
        p.cpu_share_min = share if p.cpu_share_min is None else min(p.cpu_share_min, share)
        if share < CONTENDED_SHARE:
            p.contended += 1
    if rec.get("run_id"):
        _once(p.run_ids, rec["run_id"])


def _once(items: list[str], v: str) -> None:
    if v not in items:
        items.append(v)


def load_experiment(repo: Path, exp: str, skipped: list[Skipped]) -> Experiment | None:
    sources = []
    own = _source(repo, exp, layout.experiment_dir(repo, exp), "this machine", False, skipped)
    if own is not None:
        sources.append(own)
    hosts_root = layout.hosts_dir(repo, exp)
    if hosts_root.is_dir():
        for d in sorted(hosts_root.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                s = _source(repo, exp, d, d.name, True, skipped)
                if s is not None:
                    if own is not None and s.host == own.host:
                        s.host = f"{s.host} (imported)"
                    sources.append(s)
    if not sources:
        return None
    params: list[str] = []
    metrics: dict[str, dict[str, str]] = {}
    for s in sources:
        if s.table is None:
            continue
        for c in s.table.columns:
            if c not in tables.STAT_COLUMNS and c not in params:
                params.append(c)
        for m, u, b in (
            s.table[["metric", "unit", "better"]].drop_duplicates().itertuples(index=False)
        ):
            metrics.setdefault(m, {"name": m, "unit": str(u), "better": str(b)})
    return Experiment(exp, params, sources, list(metrics.values()))


def clean(v: Any) -> Any:
    """JSON-safe cell: NaN -> None, numpy scalars -> Python."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
