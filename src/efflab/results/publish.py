"""Publishing table versions (and nightly summaries) to a git results repository.

Layout of the results repository (created on first publish):

    README.md                      what this repository is
    <exp>/v<N>/                    table.parquet, table.csv, table.md, manifest.json
    nightly/<n>/                   summary.md, summary.json, index.html, *.png
    nightly/history.jsonl          the nightly history as of the latest published night

One publish is one commit; every table version gets an annotated tag `<exp>/v<N>` and
every nightly summary a tag `nightly/<n>`. A tag is the proof that a version is
published, so publishing it again is a no-op — and a tag whose manifest has another
content hash is a conflict (a different project's v<N>), never overwritten: table
versions are immutable. Only gitpython touches git, under a lock on the repository.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from efflab.core.errors import BadInput, RunFailed
from efflab.core.layout import history_file, nightly_dir
from efflab.core.locks import FileLock
from efflab.results import tables

DEFAULT_AUTHOR = ("efflab", "efflab@localhost")

README = """\
# efflab results

Published by `efflab results publish` / `efflab nightly --publish`. Nothing here is
edited by hand.

- `<experiment>/v<N>/` — a versioned result table (Parquet, CSV, Markdown) with its
  manifest (content hash, parent version, git commit of the code, run id); tag `<experiment>/v<N>`.
- `nightly/<n>/` — a nightly summary and trend dashboard (`index.html`); tag `nightly/<n>`.
- `nightly/history.jsonl` — the nightly history (which records formed each night).

Read back with `efflab results history <experiment> --repo <this folder>`.
"""


@dataclass
class Published:
    repo: Path
    created: bool = False
    commit: str | None = None  # the new commit, None when nothing was new
    tags: list[str] = field(default_factory=list)  # tags made by this publish
    unchanged: list[str] = field(default_factory=list)  # already published, same content

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "created": self.created,
            "commit": self.commit,
            "tags": self.tags,
            "unchanged": self.unchanged,
        }


def _open(dest: Path, create: bool):
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        if not create:
            raise BadInput(dest, "$", "a git results repository", "no such repository")
        dest.mkdir(parents=True, exist_ok=True)
        return git.Repo.init(dest), True
    try:
        repo = git.Repo(dest)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(
            dest, "$", "a git repository, or an absent or empty folder", "a folder without .git"
        ) from None
    if repo.bare:
        raise BadInput(
            dest, "$", "a repository with a working tree", "a bare repository",
            "clone it, publish into the clone, then push",
        )  # fmt: skip
    if repo.working_tree_dir is None or Path(repo.working_tree_dir).resolve() != dest.resolve():
        raise BadInput(dest, "$", "the top folder of a git repository", "a subfolder of one")
    return repo, False


def check_destination(dest: Path) -> None:
    """Fail early (before a long nightly) on a destination publish could not use."""
    dest = dest.resolve()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        _open(dest, create=False)


def _identity(repo) -> dict[str, str]:
    """Author from the repository's git config, else a neutral efflab identity."""
    reader = repo.config_reader()
    name = reader.get_value("user", "name", DEFAULT_AUTHOR[0])
    email = reader.get_value("user", "email", DEFAULT_AUTHOR[1])
    return {
        "GIT_AUTHOR_NAME": str(name),
        "GIT_AUTHOR_EMAIL": str(email),
        "GIT_COMMITTER_NAME": str(name),
        "GIT_COMMITTER_EMAIL": str(email),
    }


def _tag_blob(repo, tag: str, path: str) -> bytes | None:
    if tag not in repo.tags:
        return None
    try:
        return repo.tags[tag].commit.tree[path].data_stream.read()
    except KeyError:
        return None


def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))


def publish(
    project: Path,
    experiments: list[str],
    dest: Path,
    *,
    versions: dict[str, list[int]] | None = None,
    nightly: int | None = None,
    message: str | None = None,
) -> Published:
    """Commit the experiments' table versions (all, or `versions[exp]`) and a night."""
    todo: list[tuple[str, int]] = []
    for i, exp in enumerate(experiments):
        have = tables.versions(project, exp)
        if not have:
            raise BadInput(
                tables.tables_dir(project, exp),
                f"$.experiments[{i}]",
                f"table versions of '{exp}' (run `efflab run {exp}` first)",
                "none",
            )
        wanted = (versions or {}).get(exp) or have
        for v in wanted:
            if v not in have:
                raise BadInput(tables.tables_dir(project, exp), "$.version", f"one of {have}", v)
            todo.append((exp, v))
    night_src = nightly_dir(project) / str(nightly) if nightly is not None else None
    if night_src is not None and not (night_src / "summary.json").is_file():
        raise BadInput(night_src, "$", "a nightly summary folder", "none (run `efflab nightly`)")

    dest = dest.resolve()
    repo, created = _open(dest, create=True)
    res = Published(repo=dest, created=created)
    with FileLock(str(Path(repo.git_dir) / "efflab-publish.lock")):
        if repo.head.is_valid() and repo.index.diff("HEAD"):
            raise BadInput(dest, "$", "no staged changes in the results repository", "some")
        paths: list[str] = []
        new: list[tuple[str, str]] = []  # (tag, annotation)
        if created:
            (dest / "README.md").write_text(README)
            paths.append("README.md")
        for exp, v in todo:
            tag, rel = f"{exp}/v{v}", f"{exp}/v{v}"
            man = tables.manifest(project, exp, v)
            old = _tag_blob(repo, tag, f"{rel}/manifest.json")
            if old is not None:
                if json.loads(old).get("content_hash") != man["content_hash"]:
                    raise BadInput(
                        dest, f"$.tags['{tag}']", f"content hash {man['content_hash'][:12]}",
                        json.loads(old).get("content_hash", "?")[:12],
                        "this tag holds another table; publish into another repository",
                    )  # fmt: skip
                res.unchanged.append(tag)
                continue
            _copy_tree(tables.tables_dir(project, exp) / f"v{v}", dest / rel)
            paths.append(rel)
            new.append((tag, f"{exp} table v{v}\n\n{json.dumps(man, indent=2, default=str)}"))
        if night_src is not None:
            tag = f"nightly/{nightly}"
            if tag in repo.tags:
                res.unchanged.append(tag)
            else:
                _copy_tree(night_src, dest / "nightly" / str(nightly))
                shutil.copy2(history_file(project), dest / "nightly" / "history.jsonl")
                paths += [f"nightly/{nightly}", "nightly/history.jsonl"]
                summary = json.loads((night_src / "summary.json").read_text())
                new.append((tag, f"nightly #{nightly}: exit {summary.get('exit_code')}"))
        if not new and not created:
            return res
        env = _identity(repo)
        try:
            with repo.git.custom_environment(**env):
                # the git binary (through gitpython) stages folders, additions and removals
                repo.git.add("-A", "--", *paths)
                if not repo.head.is_valid() or repo.git.diff("--cached", "--name-only"):
                    what = ", ".join(t for t, _ in new) or "initial"
                    repo.git.commit("-q", "-m", message or f"efflab publish: {what}")
                    res.commit = repo.head.commit.hexsha
                # files already committed but a tag missing (an interrupted publish):
                # the tag goes on HEAD, no empty commit
                for tag, note in new:
                    repo.create_tag(tag, ref=repo.head.commit, message=note)
        except git.GitCommandError as exc:
            raise RunFailed(f"publishing to {dest} failed: {exc}") from None
        res.tags = [t for t, _ in new]
    return res


TAG = re.compile(r"^(?P<exp>.+)/v(?P<v>\d+)$")


def history(dest: Path, experiment: str) -> list[dict[str, Any]]:
    """Published versions of an experiment, oldest first, read back from the tags."""
    repo, _ = _open(dest.resolve(), create=False)
    out = []
    for tag in repo.tags:
        m = TAG.match(tag.name)
        if not m or m["exp"] != experiment:
            continue
        v = int(m["v"])
        blob = _tag_blob(repo, tag.name, f"{experiment}/v{v}/manifest.json")
        out.append(
            {
                "version": v,
                "tag": tag.name,
                "commit": tag.commit.hexsha,
                "published": tag.commit.committed_datetime.isoformat(),
                "manifest": json.loads(blob) if blob else None,
            }
        )
    return sorted(out, key=lambda r: r["version"])


def published_table(dest: Path, experiment: str, version: int, fmt: str = "md") -> str:
    """A published table (md or csv) as it was tagged."""
    repo, _ = _open(dest.resolve(), create=False)
    blob = _tag_blob(repo, f"{experiment}/v{version}", f"{experiment}/v{version}/table.{fmt}")
    if blob is None:
        known = [r["version"] for r in history(dest, experiment)]
        raise BadInput(dest, "$.version", f"a published version of '{experiment}' {known}", version)
    return blob.decode()
