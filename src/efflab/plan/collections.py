"""Script collections from elsewhere: another folder or a git repository pinned to a
commit, whose scripts resolve alongside the project's (`efflab repo add|list|remove`).

The list lives in the project (`workflows/collections.yaml`, meant to be committed),
so a clone of the project resolves the same scripts at the same commits; git
collections are checked out with gitpython into `.efflab/collections/<name>/<commit>`
on first use. A git collection's commit enters its scripts' keys (`Script.collection`).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_text, load_yaml

FILE = Path("workflows") / "collections.yaml"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Collection:
    name: str
    source: str  # a folder path or a git URL (a local path to a repository works too)
    ref: str | None  # what the user asked for (branch, tag, commit)
    commit: str | None  # the pinned commit (None: a plain folder, followed as it is)
    subdir: str = "scripts"  # where its scripts live inside it

    @property
    def label(self) -> str:
        return f"{self.name}@{self.commit[:12]}" if self.commit else self.name


def collections_file(repo: Path) -> Path:
    return repo / FILE


def load(repo: Path) -> list[Collection]:
    f = collections_file(repo)
    if not f.exists():
        return []
    data = load_yaml(f) or {}
    items = data.get("collections") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BadInput(f, "$.collections", "a list of collections", type(items).__name__)
    out = []
    for i, c in enumerate(items):
        if not isinstance(c, dict) or not {"name", "source"} <= set(c):
            raise BadInput(f, f"$.collections[{i}]", "a mapping with name and source", c)
        out.append(
            Collection(
                c["name"], c["source"], c.get("ref"), c.get("commit"), c.get("subdir") or "scripts"
            )
        )
    return out


def save(repo: Path, items: list[Collection]) -> None:
    data = {
        "collections": [
            {
                k: v
                for k, v in vars(c).items()
                if v is not None and not (k == "subdir" and v == "scripts")
            }
            for c in items
        ]
    }
    head = "# Script collections (efflab repo add|remove); commit this file to pin them.\n"
    atomic_write_text(collections_file(repo), head + yaml.safe_dump(data, sort_keys=False))


def _is_git(source: str) -> bool:
    p = Path(source)
    return not p.is_dir() or (p / ".git").exists() or source.endswith(".git")


def _clone(repo: Path, source: str, name: str, ref: str | None) -> str:
    """Clone `source`, check out `ref` (default HEAD); returns the commit. The checkout
    lands in `.efflab/collections/<name>/<commit>` (kept: it is the cache)."""
    import git  # GitPython (~0.25 s): only when a git collection is first checked out

    base = layout.state_dir(repo, "collections") / name
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / ".clone.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        clone = git.Repo.clone_from(source, tmp)
        commit = clone.commit(ref or "HEAD").hexsha
        clone.git.checkout(commit)
    except (git.GitCommandError, git.BadName, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        raise BadInput(source, "$", f"a git repository with ref {ref or 'HEAD'}", detail) from None
    dest = base / commit
    if dest.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(dest)
    return commit


def checkout(repo: Path, c: Collection) -> Path:
    """The folder holding the collection's scripts (cloned at its commit when missing)."""
    if c.commit is None:
        return Path(c.source) / c.subdir
    dest = layout.state_dir(repo, "collections") / c.name / c.commit
    if not dest.exists():
        _clone(repo, c.source, c.name, c.commit)
    return dest / c.subdir


def script_roots(repo: Path) -> list[tuple[Path, Collection]]:
    return [(checkout(repo, c), c) for c in load(repo)]


def add(repo: Path, source: str, name: str | None = None, ref: str | None = None) -> Collection:
    """Register a collection; a git one is pinned to the commit `ref` (default HEAD) is."""
    name = name or Path(source.rstrip("/")).name.removesuffix(".git")
    if not NAME.match(name):
        raise BadInput("--name", "$", "a collection name [a-z0-9][a-z0-9._-]*", name)
    items = load(repo)
    if any(c.name == name for c in items):
        raise BadInput(collections_file(repo), "$.collections", f"a new name (not '{name}')", name,
                       "remove it first: efflab repo remove " + name)  # fmt: skip
    if _is_git(source):
        c = Collection(name, source, ref, _clone(repo, source, name, ref))
    else:
        c = Collection(name, str(Path(source).resolve()), None, None)
    root = checkout(repo, c)
    if not root.is_dir() or not any(root.glob("*/meta.yaml")):
        raise BadInput(source, f"$.{c.subdir}", "a folder of scripts (<alias>/meta.yaml)", "none")
    save(repo, [*items, c])
    return c


def remove(repo: Path, name: str) -> Collection:
    items = load(repo)
    hit = [c for c in items if c.name == name]
    if not hit:
        known = ", ".join(c.name for c in items) or "none"
        raise BadInput(
            collections_file(repo), "$.collections", f"a registered collection ({known})", name
        )
    save(repo, [c for c in items if c.name != name])
    return hit[0]
