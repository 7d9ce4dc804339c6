"""Reading a foreign tree through `efflab.results.safe_copy`: regular files only, no
symbolic link anywhere below the root (opened with O_NOFOLLOW, never followed), no
path outside the root, the import's files and bytes capped (`EFFLAB_IMPORT_MAX_*`).

Anything not made by this machine's efflab is hostile: a submission tree may hold a
symlink to /etc or to `..`, a 20 GB "log", a FIFO that blocks a reader forever. A
refusal is BadInput naming the file (exit 2) before anything is written. `Tree` is
the formats' view of one such folder: paths in, safe_copy's checks underneath.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.results import safe_copy

SMALL = 4 << 20  # JSON descriptions, summaries, accuracy.txt: a few kB in real trees


class Tree:
    """A foreign folder, read without following links or leaving it."""

    def __init__(self, root: Path, what: str):
        self.what = what  # what the root should be, for messages
        root = Path(os.path.abspath(root))
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            raise BadInput(root, "$", what, "no such folder") from None
        if not stat.S_ISDIR(st.st_mode):
            found = "a file" if stat.S_ISREG(st.st_mode) else safe_copy.kind(st.st_mode)
            raise BadInput(root, "$", what, found)
        self.root = root
        self.budget = safe_copy.Budget(safe_copy.Limits.from_env())

    def _rel(self, path: Path) -> str:
        path = Path(os.path.abspath(path))
        if not path.is_relative_to(self.root):  # `..` was resolved lexically above
            raise BadInput(path, "$", f"a path inside {self.root}", "a path outside it")
        return path.relative_to(self.root).as_posix().removeprefix(".")

    def entries(self, folder: Path) -> list[Path]:
        """A folder's entries (sorted); symlinks and special files are refused."""
        rel = self._rel(folder)
        return [Path(folder) / name for name, _ in safe_copy.entries(self.root, rel)]

    def dirs(self, folder: Path) -> list[Path]:
        if not self.is_dir(folder):
            return []
        rel = self._rel(folder)
        return [Path(folder) / n for n, what in safe_copy.entries(self.root, rel)
                if what == "dir" and not n.startswith(".")]  # fmt: skip

    def files(self, folder: Path) -> list[Path]:
        if not self.is_dir(folder):
            return []
        rel = self._rel(folder)
        return [Path(folder) / n for n, what in safe_copy.entries(self.root, rel)
                if what == "file" and not n.startswith(".")]  # fmt: skip

    def walk(self, folder: Path | None = None) -> Iterator[Path]:
        """Every regular file under folder (hidden ones aside), sorted."""
        for rel in safe_copy.walk(self.root, self._rel(folder or self.root)):
            if not any(p.startswith(".") for p in rel.split("/")):
                yield self.root / rel

    def is_dir(self, path: Path) -> bool:
        self._rel(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(path, "$", "a folder (symbolic links are not followed)",
                           f"a symbolic link to {os.readlink(path)!r}")  # fmt: skip
        return stat.S_ISDIR(st.st_mode)

    def exists(self, path: Path) -> bool:
        self._rel(path)
        try:
            os.lstat(path)
            return True
        except FileNotFoundError:
            return False

    def read_bytes(self, path: Path, cap: int | None = None) -> bytes:
        """A regular file's bytes (no link on the way, no FIFO), at most `cap`."""
        return safe_copy.read(self.root, self._rel(path), self.budget, cap)

    def read_text(self, path: Path, cap: int | None = None) -> str:
        data = self.read_bytes(path, cap)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(
                path, "$", "UTF-8 text", f"undecodable byte at offset {exc.start}"
            ) from None

    def read_json(self, path: Path, cap: int = SMALL) -> Any:
        text = self.read_text(path, cap)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(path, "$", "JSON", f"invalid at line {exc.lineno} ({exc.msg})") from None
