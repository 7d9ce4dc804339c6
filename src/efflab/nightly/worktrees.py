"""Throw-away git worktrees that share one artifacts cache (bisect, compare).

Each measured revision gets its own worktree (gitpython; removed at the end), whose
`artifacts/` is a link to `.efflab/<kind>/artifacts`: content keys then decide what
is reused between revisions (unsalted deps: datasets, trained models) and what runs
anew (salted measured steps). Paths have one length per session (`<tmp>/<sha[:12]>`,
a suffix for a second tree of one commit), so a count of a script's work does not
move with the path it runs from. The repository of an invocation is its worktree
(`efflab.runtime.runner.repo_of`), never the cache's parent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import git

from efflab.core.layout import state_dir


class Worktrees:
    def __init__(self, repo: Path, kind: str):
        self.git = git.Repo(repo)
        self.cache = state_dir(repo, kind) / "artifacts"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"efflab-{kind}-"))
        self.trees: list[Path] = []

    def add(self, sha: str, tag: str = "0") -> Path:
        """A worktree of `sha` (detached) with the shared artifacts cache; `tag` (one
        character) tells two trees of the same commit apart."""
        wt = self.tmp / f"{sha[:12]}-{tag[:1]}"
        self.git.git.worktree("add", "--detach", "--force", str(wt), sha)
        self.trees.append(wt)
        art = wt / "artifacts"
        if art.is_symlink() or art.is_file():
            art.unlink()
        elif art.exists():
            shutil.rmtree(art)
        art.symlink_to(self.cache, target_is_directory=True)
        return wt

    def drop(self, wt: Path) -> None:
        self.git.git.worktree("remove", "--force", str(wt))
        self.trees.remove(wt)

    def close(self) -> None:
        for wt in list(self.trees):
            self.drop(wt)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.git.git.worktree("prune")
