"""Sealed mode: a caller's tightening of the Docker runtime's sandbox.

Why it exists: the docker runtime seals every container from the script's own
`resources:` (declared by the script's author). Untrusted work — a tournament
submission — must instead run under limits set by whoever *verifies* it, and must see
nothing but its own inputs. The caller sets `EFFLAB_SEALED` (JSON) in the environment
of `efflab.workflow.snakemake_adapter.run`; Snakemake hands it to every runner process, and
`efflab.runtime.docker.execute_docker` applies it through the two hooks below:

- `tighten(inv)`: each limit becomes min(declared, sealed) — a sealed setting can only
  make a sandbox stricter, never looser; network is always off; a step without an env
  fails instead of falling back to the host.
- `efflab.runtime.docker.seal_config(config, repo, inv, folder)`: with `own_files_only`, the repo is no longer
  mounted: only the step's script folder (+ includes), its dependencies' artifact
  folders (read-only, transitively) and its own invocation folder; `/tmp` is a tmpfs of
  `tmp_mb`, and `file_mb` caps the size of any file it writes (RLIMIT_FSIZE).

Settings (all optional): cpus, mem_mb, pids, timeout_s, tmp_mb, file_mb, own_files_only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from efflab.core.invocation import Invocation
from efflab.runtime.failure import SCRIPT, InvocationFailed

ENV_VAR = "EFFLAB_SEALED"
LIMITS = ("cpus", "mem_mb", "pids", "timeout_s")
KNOWN = {*LIMITS, "tmp_mb", "file_mb", "own_files_only"}


def settings() -> dict[str, Any] | None:
    """The sealed settings in force for this process, or None when not sealed."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:  # fail closed: never run unsealed by accident
        raise RuntimeError(f"${ENV_VAR} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - KNOWN:
        raise RuntimeError(f"${ENV_VAR} must be a JSON object with keys from {sorted(KNOWN)}")
    return data


def encode(values: dict[str, Any]) -> str:
    """The value to put in $EFFLAB_SEALED for `values` (unknown keys are an error)."""
    unknown = set(values) - KNOWN
    if unknown:
        raise ValueError(f"unknown sealed settings {sorted(unknown)}; known: {sorted(KNOWN)}")
    return json.dumps(values, sort_keys=True)


def tighten(inv: Invocation) -> Invocation:
    """The invocation with its resources tightened by the sealed settings (a copy)."""
    s = settings()
    if s is None:
        return inv
    if not inv.env:
        raise InvocationFailed(
            SCRIPT,
            f"sealed run: step '{inv.alias}' declares no env, and a sealed step never "
            "falls back to the host; give its meta.yaml an `env:`",
        )
    res = dict(inv.resources or {})
    ncpu = os.cpu_count() or 1
    if res.pop("exclusive", False):  # "all cores" becomes a number the cap can apply to
        res["cpus"] = ncpu
    for k in LIMITS:
        if s.get(k) is not None:
            res[k] = min(res[k], s[k]) if res.get(k) is not None else s[k]
    res["network"] = False
    return inv.with_resources(res)


def dep_folders(repo: Path, inv: Invocation) -> list[Path]:
    """Artifact folders of the invocation's dependencies, transitively (sorted)."""
    seen: set[Path] = set()
    stack = list((inv.deps or {}).values())
    while stack:
        ref = stack.pop()
        folder = repo / "artifacts" / ref["alias"] / ref["key"]
        if folder in seen:
            continue
        seen.add(folder)
        f = folder / "invocation.json"
        if f.exists():
            stack.extend((json.loads(f.read_text()).get("deps") or {}).values())
    return sorted(seen)
