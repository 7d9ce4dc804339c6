"""Script collections from elsewhere: another folder or a git repository pinned to a
commit, whose scripts resolve alongside the project's (`efflab repo add|list|remove`).

The list lives in the project (`workflows/collections.yaml`, meant to be committed),
so a clone of the project resolves the same scripts at the same commits; git
collections are checked out with gitpython into `.efflab/collections/<name>/<commit>`
on first use. A git collection's commit enters its scripts' keys (`Script.collection`).

A collection is someone else's code. Until the project trusts it (`repo add --trust`
or `repo trust NAME`, recorded as `trusted: true` in collections.yaml), none of it
runs outside a container: its `check.py` is never imported, and its scripts run only
with `--runtime docker` in their env's image (`refuse_unsandboxed`). Inspection
(`script list|show`, `plan`, `explain`) never imports a collection's code, trusted or
not. A git source is a path or an http(s)/ssh/git/file URL, never a transport that
runs a command (`ext::sh -c ...`). See docs/security.md.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
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
    trusted: bool = False  # may its code run on the host (check.py, --runtime host)?

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
        for k in ("name", "source", "ref", "commit", "subdir"):
            if c.get(k) is not None and not isinstance(c[k], str):
                raise BadInput(f, f"$.collections[{i}].{k}", "a string", c[k])
        if not isinstance(c.get("trusted", False), bool):
            raise BadInput(f, f"$.collections[{i}].trusted", "true or false", c["trusted"])
        if not NAME.match(c["name"]):
            raise BadInput(f, f"$.collections[{i}].name", "a collection name [a-z0-9][a-z0-9._-]*", c["name"])  # fmt: skip
        sub = c.get("subdir") or "scripts"
        if Path(sub).is_absolute() or ".." in Path(sub).parts:
            raise BadInput(f, f"$.collections[{i}].subdir", "a folder inside the collection", sub)
        out.append(
            Collection(
                c["name"],
                c["source"],
                c.get("ref"),
                c.get("commit"),
                sub,
                bool(c.get("trusted", False)),
            )  # fmt: skip
        )
    return out


def save(repo: Path, items: list[Collection]) -> None:
    data = {
        "collections": [
            {
                k: v
                for k, v in vars(c).items()
                if v is not None
                and not (k == "subdir" and v == "scripts")
                and not (k == "trusted" and v is False)
            }
            for c in items
        ]
    }
    head = "# Script collections (efflab repo add|remove); commit this file to pin them.\n"
    atomic_write_text(collections_file(repo), head + yaml.safe_dump(data, sort_keys=False))


# git transports that fetch data; `ext::` (runs a command) and `fd::` never
SAFE_URL = re.compile(r"^(https?|ssh|git|file)://[^\s]+$|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
GIT_ENV = {"GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh", "GIT_TERMINAL_PROMPT": "0"}


def _is_git(source: str) -> bool:
    p = Path(source)
    return not p.is_dir() or (p / ".git").exists() or source.endswith(".git")


def check_source(source: str) -> None:
    """A folder, or a git URL whose transport only fetches; BadInput otherwise."""
    if not source or source.startswith("-") or "\0" in source or "\n" in source:
        raise BadInput("PATH|GIT-URL", "$", "a folder or a git URL", source)
    if "::" in source.split("/", 1)[0] or (
        "://" in source and not SAFE_URL.match(source)
    ):  # ext::sh -c ..., fd::3, a transport helper
        raise BadInput("PATH|GIT-URL", "$",
                       "a folder or a git URL over https, http, ssh, git or file",
                       source, "transports that run commands (ext::) are refused")  # fmt: skip


def _clone(repo: Path, source: str, name: str, ref: str | None) -> str:
    """Clone `source`, check out `ref` (default HEAD); returns the commit. The checkout
    lands in `.efflab/collections/<name>/<commit>` (kept: it is the cache)."""
    import git  # GitPython (~0.25 s): only when a git collection is first checked out

    base = layout.state_dir(repo, "collections") / name
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / ".clone.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    check_source(source)
    try:
        clone = git.Repo.clone_from(source, tmp, env=GIT_ENV)
        commit = clone.commit(ref or "HEAD").hexsha
        clone.git.checkout(commit)
    except (git.GitError, git.BadName, ValueError) as exc:
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


def add(
    repo: Path, source: str, name: str | None = None, ref: str | None = None, trust: bool = False
) -> Collection:
    """Register a collection; a git one is pinned to the commit `ref` (default HEAD) is.
    `trust` is recorded with it, before anything of it can run."""
    check_source(source)
    name = name or Path(source.rstrip("/")).name.removesuffix(".git")
    if not NAME.match(name):
        raise BadInput("--name", "$", "a collection name [a-z0-9][a-z0-9._-]*", name)
    items = load(repo)
    if any(c.name == name for c in items):
        raise BadInput(collections_file(repo), "$.collections", f"a new name (not '{name}')", name,
                       "remove it first: efflab repo remove " + name)  # fmt: skip
    if _is_git(source):
        c = Collection(name, source, ref, _clone(repo, source, name, ref), trusted=trust)
    else:
        c = Collection(name, str(Path(source).resolve()), None, None, trusted=trust)
    root = checkout(repo, c)
    if not root.is_dir() or not any(root.glob("*/meta.yaml")):
        raise BadInput(source, f"$.{c.subdir}", "a folder of scripts (<alias>/meta.yaml)", "none")
    save(repo, [*items, c])
    return c


def set_trust(repo: Path, name: str, trusted: bool) -> Collection:
    """Record whether the project trusts collection `name` (its code may run on the host)."""
    items = load(repo)
    hit = [c for c in items if c.name == name]
    if not hit:
        known = ", ".join(c.name for c in items) or "none"
        raise BadInput(collections_file(repo), "$.collections", f"a registered collection ({known})", name)  # fmt: skip
    new = replace(hit[0], trusted=trusted)
    save(repo, [new if c.name == name else c for c in items])
    return new


def untrusted_roots(repo: Path) -> list[tuple[Path, Collection]]:
    """The script folders of collections the project has not trusted."""
    return [(checkout(repo, c).resolve(), c) for c in load(repo) if not c.trusted]


def refuse_unsandboxed(repo: Path, invocations, runtime: str) -> None:
    """BadInput (exit 2) when an untrusted collection's script would run outside a
    container: with a runtime other than docker, or with no env image to run in."""
    roots = untrusted_roots(repo)
    if not roots:
        return
    for inv in invocations:
        where = Path(inv.script_dir)
        for root, c in roots:
            if where.is_relative_to(root) and (runtime != "docker" or not inv.env):
                how = f"--runtime {runtime}" if runtime != "docker" else "no env (it would run on the host)"  # fmt: skip
                raise BadInput(collections_file(repo), f"$.collections.{c.name}.trusted",
                               f"a trusted collection to run its script '{inv.alias}' outside a container",
                               f"not trusted, and {how}",
                               f"run it with --runtime docker, or trust it: efflab repo trust {c.name}")  # fmt: skip


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
