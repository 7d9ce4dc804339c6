"""Reading a foreign tree: regular files only, no symlinks, nothing outside the root,
nothing over a size cap.

Anything not made by this machine's efflab is hostile: a submission tree may hold a
symlink to /etc or to `..`, a 20 GB "log", a FIFO that blocks a reader forever. Every
path is checked with lstat (never followed), and a refusal is BadInput naming the
file (exit 2) before anything is written. The caps are environment variables:
`EFFLAB_MAX_IMPORT_FILE_BYTES` (one file), `EFFLAB_MAX_IMPORT_FILES` (files walked).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput

LIMITS = {
    "EFFLAB_MAX_IMPORT_FILE_BYTES": 256 << 20,  # LoadGen detail logs of long runs are big
    "EFFLAB_MAX_IMPORT_FILES": 200_000,
}
SMALL = 4 << 20  # JSON descriptions, summaries, accuracy.txt: a few kB in real trees


def limit(name: str) -> int:
    text = os.environ.get(name, "")
    return int(text) if text.isdigit() and int(text) > 0 else LIMITS[name]


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


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
            raise BadInput(
                root, "$", what, _kind(st.st_mode) if not stat.S_ISREG(st.st_mode) else "a file"
            )
        self.root = root
        self.files_seen = 0

    def _inside(self, path: Path) -> Path:
        path = Path(os.path.abspath(path))
        if not path.is_relative_to(self.root):  # `..` was resolved lexically above
            raise BadInput(path, "$", f"a path inside {self.root}", "a path outside it")
        return path

    def entries(self, folder: Path) -> list[Path]:
        """A folder's entries (sorted); symlinks and special files are refused."""
        folder = self._inside(folder)
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise BadInput(folder, "$", "a readable folder", exc.strerror) from None
        out = []
        for n in names:
            p = folder / n
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise BadInput(p, "$", "a regular file or folder (symbolic links are not followed)",
                               f"a symbolic link to {os.readlink(p)!r}")  # fmt: skip
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise BadInput(p, "$", "a regular file or folder", _kind(st.st_mode))
            out.append(p)
        self.files_seen += len(out)
        cap = limit("EFFLAB_MAX_IMPORT_FILES")
        if self.files_seen > cap:
            raise BadInput(self.root, "$", f"a tree of at most {cap} entries",
                           f"more than {cap}", "raise EFFLAB_MAX_IMPORT_FILES")  # fmt: skip
        return out

    def dirs(self, folder: Path) -> list[Path]:
        if not self.is_dir(folder):
            return []
        return [p for p in self.entries(folder) if p.is_dir() and not p.name.startswith(".")]

    def files(self, folder: Path) -> list[Path]:
        if not self.is_dir(folder):
            return []
        return [p for p in self.entries(folder) if os.path.isfile(p) and not p.name.startswith(".")]

    def walk(self, folder: Path | None = None) -> Iterator[Path]:
        """Every regular file under folder, depth first, sorted."""
        stack = [folder or self.root]
        while stack:
            d = stack.pop()
            for p in reversed(self.entries(d)):
                if p.name.startswith("."):
                    continue
                if p.is_dir():
                    stack.append(p)
                else:
                    yield p

    def is_dir(self, path: Path) -> bool:
        path = self._inside(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(path, "$", "a folder (symbolic links are not followed)",
                           f"a symbolic link to {os.readlink(path)!r}")  # fmt: skip
        return stat.S_ISDIR(st.st_mode)

    def exists(self, path: Path) -> bool:
        try:
            os.lstat(self._inside(path))
            return True
        except FileNotFoundError:
            return False

    def read_bytes(self, path: Path, cap: int | None = None) -> bytes:
        """A regular file's bytes (lstat first: no link, no FIFO), at most `cap`."""
        path = self._inside(path)
        cap = min(
            cap or limit("EFFLAB_MAX_IMPORT_FILE_BYTES"), limit("EFFLAB_MAX_IMPORT_FILE_BYTES")
        )
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise BadInput(path, "$", "an existing file", "no such file") from None
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(path, "$", "a regular file", _kind(st.st_mode))
        if st.st_size > cap:
            raise BadInput(path, "$", f"a file of at most {cap} bytes", f"{st.st_size} bytes",
                           "raise EFFLAB_MAX_IMPORT_FILE_BYTES to allow it")  # fmt: skip
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(cap + 1)
        if len(data) > cap:  # grew while read
            raise BadInput(path, "$", f"a file of at most {cap} bytes", "a growing file")
        return data

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
