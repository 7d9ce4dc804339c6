"""A container's sandbox, as docker SDK `containers.create` keyword arguments: what
the docker runtime (fresh and warm containers) and the tournament's sandbox probe
create. Mounts keep paths identical inside and out; sealed runs tighten it
(efflab.runtime.sealed).
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import Any

from docker.types import Mount, Ulimit

from efflab.core import lifeline
from efflab.core.invocation import Invocation
from efflab.envs import cleanup as imagegc
from efflab.runtime import pinning, sealed
from efflab.runtime.host import PKG_ROOT

LABEL_RUN, LABEL_KEY = "efflab.run", "efflab.key"
PKG_MOUNT = "/opt/efflab"  # efflab's package is mounted at PKG_MOUNT/efflab
DEFAULT_PIDS = 4096
SEALED_ENV = ("EFFLAB_RUNTIME",)  # what a sealed container gets of efflab's variables


def shared_artifacts(repo: Path) -> Path | None:
    """Where `repo/artifacts` really is when it links outside the repository (the
    shared cache of bisect and compare worktrees): mounted at its own path, so the
    link resolves inside the container as outside."""
    art = repo / "artifacts"
    if not art.is_symlink():
        return None
    real = art.resolve()
    return None if real.is_relative_to(repo.resolve()) else real


def _mounts(repo: Path, inv: Invocation, folder: Path) -> list[Any]:
    pkg = PKG_ROOT / "efflab"
    mounts = [Mount(str(repo), str(repo), type="bind", read_only=True)]
    shared = shared_artifacts(repo)
    if shared is not None:  # a worktree's artifacts/ links to a cache outside it
        mounts.append(Mount(str(shared), str(shared), type="bind", read_only=True))
    mounts += [
        Mount(str(folder), str(folder), type="bind", read_only=False),
        Mount(f"{PKG_MOUNT}/efflab", str(pkg), type="bind", read_only=True),
    ]
    for p in [inv.script_dir, *inv.include]:  # scripts from EFFLAB_SCRIPTS_PATH
        path = Path(p).resolve()
        if not path.is_relative_to(repo):
            mounts.append(Mount(str(path), str(path), type="bind", read_only=True))
    return mounts


def container_config(repo: Path, inv: Invocation, folder: Path, image_id: str) -> dict[str, Any]:
    """Keyword arguments for containers.create: the sealed sandbox of one invocation."""
    res = inv.resources
    ncpu = os.cpu_count() or 1
    cpus = ncpu if res.get("exclusive") else min(float(res.get("cpus", 1)), ncpu)
    env = {k: v for k, v in os.environ.items() if k.startswith("EFFLAB_")}
    env.update(
        HOME="/tmp",
        TMPDIR="/tmp",
        PYTHONPATH=PKG_MOUNT,
        PYTHONDONTWRITEBYTECODE="1",
    )
    cfg: dict[str, Any] = {
        "image": image_id,
        "command": ["python3", "-m", "efflab.runtime.runner", "--inside", str(folder)],
        "name": f"efflab-{inv.key}-{secrets.token_hex(3)}",
        "labels": {
            LABEL_RUN: os.environ.get("EFFLAB_RUN_ID") or "none",
            LABEL_KEY: inv.key,
            # the efflab process of the run: when it is gone, the next run sweeps this
            imagegc.LABEL_OWNER: os.environ.get(lifeline.OWNER_ENV) or "none",
            imagegc.LABEL_HOST: socket.gethostname(),
            "efflab.alias": inv.alias,
            "efflab.env": inv.env,
        },
        "environment": env,
        "mounts": _mounts(repo, inv, folder),
        "working_dir": str(folder),
        "user": f"{os.getuid()}:{os.getgid()}",
        "init": True,
        "network_mode": "bridge" if res.get("network") else "none",
        "nano_cpus": int(cpus * 1e9),
        "pids_limit": int(res.get("pids", DEFAULT_PIDS)),
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,nodev"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "stdin_open": False,
        "detach": True,
    }
    pin = pinning.cpus_for(res)
    if pin is not None:  # the run's split: an exclusive job's own cores, the rest else
        cfg["cpuset_cpus"] = ",".join(map(str, pin))
        cfg["nano_cpus"] = int(min(cpus, len(pin)) * 1e9)
    if res.get("mem_mb"):
        cfg["mem_limit"] = cfg["memswap_limit"] = f"{int(res['mem_mb'])}m"
    return cfg


def seal_config(
    config: dict[str, Any], repo: Path, inv: Invocation, folder: Path
) -> dict[str, Any]:
    """containers.create kwargs with the sealed mounts, tmpfs size and file-size cap."""
    s = sealed.settings()
    if s is None:
        return config
    cfg = dict(config)
    cfg["network_mode"] = "none"
    if s.get("own_files_only"):
        repo = repo.resolve()
        shared = shared_artifacts(repo)
        drop = {repo, shared} if shared else {repo}
        keep = [m for m in cfg["mounts"] if Path(m["Target"]) not in drop]  # pkg + own folder
        own = {Path(m["Target"]) for m in keep}
        for p in [inv.script_dir, *inv.include, *sealed.dep_folders(repo, inv)]:
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
    uid, gid = sealed.sandbox_user(s)
    cfg["user"] = f"{uid}:{gid}"
    # none of the caller's EFFLAB_* settings (the sealed ones, a run id) reach an entry
    cfg["environment"] = {
        k: v
        for k, v in cfg["environment"].items()
        if not k.startswith("EFFLAB_") or k in SEALED_ENV
    }
    priv = s.get("private") or {}
    if inv.alias in (priv.get("steps") or []):
        cfg["mounts"] = [*cfg["mounts"], Mount(sealed.PRIVATE_MOUNT, str(priv["dir"]), type="bind", read_only=True)]  # fmt: skip
    return cfg


def writable_mount(config: dict[str, Any], folder: Path, source: Path) -> dict[str, Any]:
    """The config with the invocation folder's rw mount backed by `source` (the quota)."""
    cfg = dict(config)
    cfg["mounts"] = [
        Mount(str(folder), str(source), type="bind", read_only=False)
        if Path(m["Target"]) == folder and not m.get("ReadOnly")
        else m
        for m in cfg["mounts"]
    ]
    return cfg
