"""Provenance captured once per `efflab run`: git state, host, Python and packages.

Package versions recorded: the framework's own, plus every package the project's
scripts declare in `requires:` (so no family's package is named here).

A record is `dirty` when the commit it names does not hold what it measured: a tracked
file of the repository was modified, or a file its key hashes (the script folder and
its includes, its env's build context, the same for every dependency) is untracked,
modified or deleted. A new script is untracked until committed, so a record of it
points at a commit without it; `dirty_files` names those files.
"""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from efflab.core import cpuinfo
from efflab.core.invocation import Invocation
from efflab.plan.registry import SKIP_DIRS, SKIP_SUFFIXES, Registry

FRAMEWORK_PACKAGES = ("efflab", "snakemake", "numpy", "pandas", "docker")


@cache
def git_state(repo: Path) -> dict[str, Any]:
    try:
        import git  # GitPython: ~0.3 s to import, needed only once a run has results

        r = git.Repo(repo, search_parent_directories=True)
        commit = r.head.commit.hexsha if r.head.is_valid() else None
        return {"commit": commit, "dirty": r.is_dirty(untracked_files=False)}
    except Exception as exc:  # not a repo, no git binary: say so rather than guess
        return {"commit": None, "dirty": None, "error": type(exc).__name__}


@cache
def changed_files(repo: Path) -> frozenset[str] | None:
    """Files (relative to `repo`) that differ from the commit: modified, staged, deleted
    or untracked (ignored files excluded); None when git cannot tell."""
    try:
        import git

        r = git.Repo(repo, search_parent_directories=True)
        out = r.git.status("--porcelain=v1", "-z", "--untracked-files=all")
        top = Path(r.working_tree_dir).resolve()
    except Exception:  # noqa: BLE001 - not a repo, no git binary: unknown, not clean
        return None
    here = repo.resolve()
    files: set[str] = set()
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":
            i += 1  # a rename's second field is the old name; the new one is what counts
        path = top / entry[3:]
        if path.is_relative_to(here):
            files.add(str(path.relative_to(here)))
    return frozenset(files)


def key_roots(repo: Path, inv: Invocation, invocations: dict[str, Invocation]) -> list[Path]:
    """Folders (relative to `repo`) whose files an invocation's key hashes, deps included."""
    roots: list[Path] = []
    seen: set[str] = set()
    todo = [inv]
    while todo:
        cur = todo.pop()
        if cur.key in seen:
            continue
        seen.add(cur.key)
        for d in [cur.script_dir, *cur.include]:
            roots.append(_rel(repo, Path(d)))
        if cur.env:
            roots.append(Path("envs") / cur.env)
        todo += [invocations[d["key"]] for d in cur.deps.values() if d["key"] in invocations]
    return list(dict.fromkeys(roots))


def _rel(repo: Path, p: Path) -> Path:
    p = p if p.is_absolute() else repo / p
    try:
        return p.resolve().relative_to(repo.resolve())
    except ValueError:  # a collection outside the repository: its commit pins it
        return p


def invocation_git(
    repo: Path, git: dict[str, Any], inv: Invocation, invocations: dict[str, Invocation]
) -> dict[str, Any]:
    """The git block of one invocation's record: `dirty` also when a file its key hashes
    is not in the commit as it is, and `dirty_files` lists those files."""
    changed = changed_files(repo)
    if changed is None:
        return dict(git)
    roots = [r for r in key_roots(repo, inv, invocations) if not r.is_absolute()]
    mine = sorted(
        f
        for f in changed
        if any(Path(f).is_relative_to(r) for r in roots)
        and not set(Path(f).parts) & SKIP_DIRS
        and Path(f).suffix not in SKIP_SUFFIXES
    )
    return {**git, "dirty": bool(git.get("dirty")) or bool(mine), "dirty_files": mine}


@cache
def host_info() -> dict[str, Any]:
    cpu = cpuinfo.this_cpu().model
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 2),
        "os": platform.platform(),
        "machine": platform.machine(),
    }


@cache
def packages(names: tuple[str, ...] = FRAMEWORK_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def declared_packages(repo: Path) -> tuple[str, ...]:
    """The framework's packages and those the project's scripts declare (`requires:`)."""
    try:
        declared = [p.dist for p in Registry.for_repo(repo).requirements().packages]
    except Exception:  # provenance never fails a run: a broken registry failed planning
        declared = []
    return tuple(dict.fromkeys([*FRAMEWORK_PACKAGES, *declared]))


def collect(repo: Path, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """`machine`: what `efflab.core.machine.state()` read when the run started
    (governor, turbo, SMT, counters, load; "unknown" where unreadable)."""
    return {
        "machine": machine,
        "git": git_state(repo),
        "host": host_info(),
        "python": platform.python_version(),
        "packages": packages(declared_packages(repo)),
    }
