"""Why an invocation is cached or will run: which component of its key changed.

A key hashes the script's files, its inputs, its deps' keys, its env's digest (and a
salt, a collection's commit); the planner records these parts in invocation.json
(`key_parts`). To explain a point, the invocation that produced the same point and
repetition last time (its run record, or a given run / table version) is compared
part by part; a changed dep is explained recursively down to the root cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.invocation import Invocation
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.core.specio import canonical_json
from efflab.plan.planner import Plan
from efflab.results import records, tables

CACHED, WILL_RUN = "cached", "will run"


@dataclass
class Explanation:
    key: str
    alias: str
    status: str  # cached | will run
    reasons: list[str] = field(default_factory=list)
    previous: str | None = None  # the key it is compared with
    point: dict[str, Any] | None = None
    repetition: int | None = None

    @property
    def line(self) -> str:
        where = (
            f" {json.dumps(self.point, sort_keys=True)} rep {self.repetition}"
            if self.point is not None
            else ""
        )
        return f"{self.alias} {self.key}{where}: {self.status}: {'; '.join(self.reasons)}"


def _old_invocation(repo: Path, alias: str, key: str) -> dict[str, Any] | None:
    f = layout.invocation_dir(repo, alias, key) / "invocation.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _runtime(part: dict[str, Any] | None) -> str:
    """A key's runtime part, as people say it ("docker on cpu-avx2")."""
    if not part:
        return "(not in the key then)"
    return str(RuntimeIdentity.from_json(part))


def diff_parts(repo: Path, plan: Plan, new: Invocation, old: dict[str, Any]) -> list[str]:
    """The components of new's key that differ from the old invocation's, named."""
    a, b = old.get("key_parts"), new.key_parts
    if not a:
        return [f"the earlier invocation {old.get('key')} predates recorded key parts"]
    out: list[str] = []
    if a.get("uid") != b.get("uid"):
        out.append(f"script uid {a.get('uid')} -> {b.get('uid')}")
    fa, fb = a.get("files") or {}, b.get("files") or {}
    for name in sorted(set(fa) | set(fb)):
        if name not in fa:
            out.append(f"script file {name} added")
        elif name not in fb:
            out.append(f"script file {name} removed")
        elif fa[name] != fb[name]:
            out.append(f"script file {name} changed")
    ia, ib = a.get("inputs") or {}, b.get("inputs") or {}
    for name in sorted(set(ia) | set(ib)):
        if canonical_json(ia.get(name)) != canonical_json(ib.get(name)):
            out.append(f"input {name}: {_short(ia.get(name))} -> {_short(ib.get(name))}")
    da, db = a.get("deps") or {}, b.get("deps") or {}
    for name in sorted(set(da) | set(db)):
        ka, kb = (da.get(name) or {}).get("key"), (db.get(name) or {}).get("key")
        if ka == kb:
            continue
        if ka is None or kb is None:
            out.append(f"dep {name} {'added' if ka is None else 'removed'}")
            continue
        dep_new = plan.invocations.get(kb)
        dep_old = _old_invocation(repo, da[name]["alias"], ka)
        if dep_new is None or dep_old is None:
            out.append(f"dep {name} key {ka} -> {kb}")
            continue
        inner = diff_parts(repo, plan, dep_new, dep_old) or ["its key changed"]
        out.append(f"dep {name} ({dep_new.alias}): " + ", ".join(inner))
    if a.get("env") != b.get("env"):
        out.append(f"env image digest {str(a.get('env'))[:12]} -> {str(b.get('env'))[:12]}")
    if a.get("runtime") != b.get("runtime"):  # efflab.core.runtime_identity
        out.append(f"runtime {_runtime(a.get('runtime'))} -> {_runtime(b.get('runtime'))}")
    if a.get("collection") != b.get("collection"):
        out.append(f"collection {a.get('collection')} -> {b.get('collection')}")
    if a.get("repetition") != b.get("repetition"):
        out.append(f"repetition {a.get('repetition')} -> {b.get('repetition')}")
    if a.get("salt") != b.get("salt"):
        out.append("a fresh measurement (--fresh / nightly salt)")
    return out


def previous_keys(repo: Path, experiment: str, against: str | None) -> dict[str, str]:
    """(point, repetition) -> the key that produced it last (or in run/version `against`)."""
    recs = records.load(repo, experiment)
    if against is not None:
        if against.isdigit():
            if int(against) not in tables.versions(repo, experiment):
                raise BadInput("--against", "$", f"a table version of '{experiment}'", against)
            keys = set(tables.manifest(repo, experiment, int(against)).get("keys") or [])
            recs = [r for r in recs if r.key in keys]
        else:
            recs = [r for r in recs if r.run_id == against]
            if not recs:
                raise BadInput(
                    "--against", "$", f"a run id with records of '{experiment}'", against
                )
    out: dict[str, str] = {}
    for r in sorted(recs, key=lambda r: r.ended or ""):
        out[canonical_json([r.point, r.repetition])] = r.key
    return out


def explain(repo: Path, plan: Plan, against: str | None = None) -> list[Explanation]:
    """One explanation per target point (deps are explained inside their dependents)."""
    prev = previous_keys(repo, plan.experiment.name, against)
    out = []
    for pt in plan.points:
        inv = plan.invocations[pt.key]
        done = (repo / inv.folder / "outputs.json").exists()
        e = Explanation(inv.key, inv.alias, CACHED if done else WILL_RUN, point=pt.params,
                        repetition=pt.repetition)  # fmt: skip
        old_key = prev.get(canonical_json([pt.params, pt.repetition]))
        e.previous = old_key
        if old_key is None:
            e.reasons.append("no earlier run of this point" if not done else "outputs present")
        elif old_key == inv.key:
            if done:
                e.reasons.append("same key as the last run; outputs present")
            else:
                failure = repo / inv.folder / "failure.json"
                e.reasons.append(
                    "same key as the last run, but its outputs are gone"
                    + (" (it failed: see failure.json)" if failure.exists() else "")
                )
        else:
            old = _old_invocation(repo, inv.alias, old_key)
            why = diff_parts(repo, plan, inv, old) if old else []
            e.reasons += why or [f"key {old_key} -> {inv.key} (earlier invocation.json not found)"]
            if done:
                e.reasons.insert(0, "outputs present for the new key")
        out.append(e)
    return out
