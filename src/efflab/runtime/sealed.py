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
- `efflab.runtime.container_config.seal_config(config, repo, inv, folder)`: with `own_files_only`, the repo is no longer
  mounted: only the step's script folder (+ includes), its dependencies' artifact
  folders (read-only, transitively) and its own invocation folder; `/tmp` is a tmpfs of
  `tmp_mb`, and `file_mb` caps the size of any file it writes (RLIMIT_FSIZE).

- the container runs as an unprivileged uid whatever uid runs efflab (`sandbox_user`:
  the caller's own uid, or `uid` (default 10001) when the caller is root), and none of
  the caller's EFFLAB_* variables (this one included) reach it;
- `disk_mb`: the writable invocation folder is a size-limited tmpfs (`QuotaFolder`),
  filled with the folder's files before and copied back after (regular files only:
  links, devices and FIFOs a script left there are dropped). Measured on this
  machine: mount + unmount of a 64 MB tmpfs ~60-130 ms, a loop-mounted ext4 image
  ~300-350 ms (mkfs included), so tmpfs it is; either needs root, and a quota that
  cannot be set fails closed;
- `private`: {"dir": D, "steps": [aliases]} mounts the organiser's secret folder D
  read-only at PRIVATE_MOUNT, only into containers of those steps.

Settings (all optional): cpus, mem_mb, pids, timeout_s, tmp_mb, file_mb, disk_mb, uid,
private, own_files_only.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from efflab.core.invocation import Invocation
from efflab.runtime.failure import INFRASTRUCTURE, SCRIPT, InvocationFailed

ENV_VAR = "EFFLAB_SEALED"
LIMITS = ("cpus", "mem_mb", "pids", "timeout_s")
KNOWN = {*LIMITS, "tmp_mb", "file_mb", "disk_mb", "uid", "private", "own_files_only"}
SANDBOX_UID = 10001  # when efflab runs as root, entries run as this uid:gid
PRIVATE_MOUNT = "/run/efflab-private"


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


def sandbox_user(s: dict[str, Any]) -> tuple[int, int]:
    """uid:gid a sealed container runs as: never root, whoever runs efflab."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    uid = int(s.get("uid") or SANDBOX_UID)
    return uid, uid


def chown_tree(folder: Path, uid: int, gid: int) -> None:
    """Give the sandbox uid its own folder (links are not followed)."""
    if os.getuid() != 0:
        return
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, uid, gid, follow_symlinks=False)
    os.chown(folder, uid, gid)


class QuotaFolder:
    """A size-limited tmpfs standing in for `folder` while a container writes to it."""

    def __init__(self, folder: Path, mb: int, uid: int, gid: int):
        self.folder, self.mb, self.uid, self.gid = folder, int(mb), uid, gid
        self.staging: Path | None = None

    def __enter__(self) -> Path:
        if os.getuid() != 0:
            raise InvocationFailed(
                INFRASTRUCTURE,
                "sealed disk quota (disk_mb) needs efflab to run as root to mount a "
                "size-limited tmpfs; nothing ran",
            )
        self.staging = Path(tempfile.mkdtemp(prefix="efflab-quota-"))
        opts = f"size={self.mb}m,mode=0700,uid={self.uid},gid={self.gid},nosuid,nodev"
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.staging)],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            self.staging.rmdir()
            raise InvocationFailed(INFRASTRUCTURE, f"could not mount the quota tmpfs: {r.stderr.strip()}")  # fmt: skip
        shutil.copytree(self.folder, self.staging, symlinks=True, dirs_exist_ok=True)
        chown_tree(self.staging, self.uid, self.gid)
        return self.staging

    def __exit__(self, *exc: Any) -> None:
        assert self.staging is not None
        try:
            _copy_back(self.staging, self.folder)
        finally:
            subprocess.run(["umount", "-l", str(self.staging)], capture_output=True)
            self.staging.rmdir()


KEPT_ON_FAILURE = ("stdout.log", "stderr.log", "container.log", ".deps.json", "invocation.json")
LOG_TAIL_BYTES = 256 << 10


def remove_path(p: Path) -> None:
    """Remove a file, link or folder (never following a link)."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def discard_written(folder: Path, before: set[str]) -> None:
    """A failed sealed run keeps nothing it wrote (up to disk_mb of it, else): its
    output folder is emptied and every new entry of its invocation folder removed; its
    logs stay, cut to their last LOG_TAIL_BYTES (what the failure reason quotes)."""
    for name in os.listdir(folder):
        p = folder / name
        if name == "out" and p.is_dir() and not p.is_symlink():
            for child in os.listdir(p):
                remove_path(p / child)
        elif name in KEPT_ON_FAILURE and name.endswith(".log"):
            if p.is_symlink() or not p.is_file():
                remove_path(p)
            elif p.stat().st_size > LOG_TAIL_BYTES:
                with open(p, "rb") as fh:
                    fh.seek(-LOG_TAIL_BYTES, os.SEEK_END)
                    tail = fh.read()
                p.write_bytes(tail)
        elif name not in before and name not in KEPT_ON_FAILURE:
            remove_path(p)


# the host's own files of an invocation folder: what the script left under these names
# is never copied back (a folder named outputs.json or failure.json would make the
# runner's own write fail, and so the run look like the verifier's failure)
HOST_OWNED = frozenset({"invocation.json", "outputs.json", ".outputs.done.json", "failure.json", ".lock"})  # fmt: skip


def _copy_back(src: Path, dst: Path) -> None:
    """Regular files and folders only, never following a link the script planted."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in HOST_OWNED]
            files = [f for f in files if f not in HOST_OWNED]
        for name in files:
            p = Path(root) / name
            if stat.S_ISREG(os.lstat(p).st_mode):
                target = dst / rel / name
                if target.is_symlink() or (target.exists() and not target.is_file()):
                    continue
                shutil.copyfile(p, target, follow_symlinks=False)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
