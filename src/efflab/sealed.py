"""Sealed mode: a caller's tightening of the Docker runtime's sandbox.

Why it exists: the docker runtime seals every container from the script's own
`resources:` (declared by the script's author). Untrusted work — a tournament
submission — must instead run under limits set by whoever *verifies* it, and must see
nothing but its own inputs. The caller sets `EFFLAB_SEALED` (JSON) in the environment
of `efflab.engine.run`; Snakemake hands it to every runner process, and
`efflab.docker_runtime.execute_docker` applies it through the two hooks below:

- `tighten(inv)`: each limit becomes min(declared, sealed) — a sealed setting can only
  make a sandbox stricter, never looser; network is always off; a step without an env
  fails instead of falling back to the host.
- `seal(config, repo, inv, folder)`: with `own_files_only`, the repo is no longer
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


def tighten(inv: dict[str, Any]) -> dict[str, Any]:
    """The invocation with its resources tightened by the sealed settings (a copy)."""
    s = settings()
    if s is None:
        return inv
    if not inv.get("env"):
        raise RuntimeError(
            f"sealed run: step '{inv['alias']}' declares no env, and a sealed step never "
            "falls back to the host; give its meta.yaml an `env:`"
        )
    res = dict(inv.get("resources") or {})
    ncpu = os.cpu_count() or 1
    if res.pop("exclusive", False):  # "all cores" becomes a number the cap can apply to
        res["cpus"] = ncpu
    for k in LIMITS:
        if s.get(k) is not None:
            res[k] = min(res[k], s[k]) if res.get(k) is not None else s[k]
    res["network"] = False
    return {**inv, "resources": res}


def dep_folders(repo: Path, inv: dict[str, Any]) -> list[Path]:
    """Artifact folders of the invocation's dependencies, transitively (sorted)."""
    seen: set[Path] = set()
    stack = list((inv.get("deps") or {}).values())
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


def seal(config: dict[str, Any], repo: Path, inv: dict[str, Any], folder: Path) -> dict[str, Any]:
    """containers.create kwargs with the sealed mounts, tmpfs size and file-size cap."""
    s = settings()
    if s is None:
        return config
    from docker.types import Mount, Ulimit

    cfg = dict(config)
    cfg["network_mode"] = "none"
    if s.get("own_files_only"):
        repo = repo.resolve()
        keep = [m for m in cfg["mounts"] if Path(m["Target"]) != repo]  # pkg + own folder
        own = {Path(m["Target"]) for m in keep}
        for p in [inv["script_dir"], *inv.get("include", []), *dep_folders(repo, inv)]:
            path = Path(p).resolve()
            if path not in own:
                own.add(path)
                keep.append(Mount(str(path), str(path), type="bind", read_only=True))
        cfg["mounts"] = keep
    if s.get("tmp_mb"):
        cfg["tmpfs"] = {"/tmp": f"rw,exec,nosuid,nodev,size={int(s['tmp_mb'])}m"}
    if s.get("file_mb"):
        n = int(s["file_mb"]) << 20
        cfg["ulimits"] = [Ulimit(name="fsize", soft=n, hard=n)]
    return cfg
