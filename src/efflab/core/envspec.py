"""Environment specs (`envs/<name>/`): what an invocation's key needs to know of its env.

The plan only needs a digest of the env's *declared* build context (Dockerfile, lock
files, other files, minus the generated wheelhouse), so planning stays pure and fast.
Building images from that context is the job of `efflab.envs.images`.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from efflab.core.errors import BadInput

GENERATED = {"wheels", "__pycache__"}


def env_dir(repo: Path, name: str) -> Path:
    return repo / "envs" / name


def known_envs(repo: Path) -> list[str]:
    root = repo / "envs"
    return (
        sorted(p.name for p in root.iterdir() if (p / "Dockerfile").is_file())
        if root.is_dir()
        else []
    )


@cache
def context_digest(repo: Path, name: str) -> str:
    """sha256 of the env's declared build context; changes whenever the env changes."""
    folder = env_dir(repo, name)
    if not (folder / "Dockerfile").is_file():
        raise BadInput(
            folder / "Dockerfile",
            "$",
            f"an env named '{name}' with a Dockerfile "
            f"(known envs: {', '.join(known_envs(repo)) or 'none'})",
            "no such file",
        )
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if f.is_file() and not (set(rel.parts) & GENERATED):
            h.update(str(rel).encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()
