"""Reading and copying a folder that came from elsewhere, never following what it points at.

Why it exists: `efflab results import` (and the other importers) read folders written
on another machine, by someone else. A folder holding `passwd.txt -> /etc/passwd`, a
link to `~/.ssh`, a FIFO that blocks a read forever, a `/dev/zero` device or a million
files must not get a host file copied into `results/` (and from there into the site),
hang the import, or fill the disk. So:

- every folder is opened with O_NOFOLLOW relative to its parent's descriptor and listed
  through that descriptor (lstat, never stat): a symbolic link anywhere below the root —
  or swapped in after the listing — is refused, never followed;
- only regular files and folders are read; a link, device, FIFO or socket is refused;
- a `Budget` caps the files and bytes of one import (configurable: `Limits.from_env`),
  and every file is read with its size re-checked on the open descriptor, so a file
  that grows while being read is refused too.

A refusal is `BadInput` (exit 2) naming the path and what it is; its content is never
read or shown. The root folder itself is the caller's choice and is resolved by the
caller; nothing below it is followed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from efflab.core.errors import BadInput

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
SKIP_NAMES = frozenset({".git", "__pycache__"})  # never walked (a published repo's .git)
MAX_DEPTH = 32  # folders below the root: results are a few levels deep, never hundreds


@dataclass(frozen=True)
class Limits:
    """Caps on one import; each is an environment variable so a big lab can raise it."""

    max_files: int = 200_000
    max_bytes: int = 4 << 30  # all files together
    max_file_bytes: int = 512 << 20  # one file (a table's Parquet is the largest)

    ENV = {
        "max_files": "EFFLAB_IMPORT_MAX_FILES",
        "max_bytes": "EFFLAB_IMPORT_MAX_BYTES",
        "max_file_bytes": "EFFLAB_IMPORT_MAX_FILE_BYTES",
    }

    @classmethod
    def from_env(cls, **given: int | None) -> Limits:
        """Defaults, overridden by the environment, overridden by `given` (CLI options)."""
        values = {}
        for name, var in cls.ENV.items():
            text = os.environ.get(var, "")
            if text and not (text.isdigit() and int(text) > 0):
                raise BadInput(f"${var}", "$", "a positive whole number", text)
            if text:
                values[name] = int(text)
            if given.get(name) is not None:
                if given[name] <= 0:  # type: ignore[operator]
                    raise BadInput(f"--{name.replace('_', '-')}", "$", "a positive number", given[name])  # fmt: skip
                values[name] = given[name]
        return cls(**values)


@dataclass
class Budget:
    """What one import has used so far of its `Limits`."""

    limits: Limits = field(default_factory=Limits)
    files: int = 0
    bytes: int = 0

    def charge(self, shown: str | Path, size: int) -> None:
        lim = self.limits
        if size > lim.max_file_bytes:
            raise BadInput(shown, "$", f"a file of at most {lim.max_file_bytes} bytes",
                           f"{size} bytes", "raise EFFLAB_IMPORT_MAX_FILE_BYTES to allow it")  # fmt: skip
        if self.files + 1 > lim.max_files:
            raise BadInput(shown, "$", f"at most {lim.max_files} files in one import",
                           "more", "raise EFFLAB_IMPORT_MAX_FILES to allow it")  # fmt: skip
        if self.bytes + size > lim.max_bytes:
            raise BadInput(shown, "$", f"at most {lim.max_bytes} bytes in one import",
                           "more", "raise EFFLAB_IMPORT_MAX_BYTES to allow it")  # fmt: skip
        self.files += 1
        self.bytes += size


def kind(mode: int) -> str:
    """What a file system entry is, in words."""
    for test, word in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return word
    return "not a regular file or folder"


def _refuse(shown: Path, what: str) -> BadInput:
    return BadInput(shown, "$", "a regular file or folder (links are never followed)", what)


def _open_error(exc: OSError, shown: Path, dir_fd: int, name: str) -> BadInput:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return _refuse(shown, kind(mode))
    if exc.errno == errno.ELOOP:
        return _refuse(shown, "a symbolic link")
    if exc.errno == errno.ENOENT:
        return BadInput(shown, "$", "an existing file", "it gone (removed while importing)")
    return BadInput(shown, "$", "a readable file or folder", exc.strerror or str(exc))


def open_root(root: Path) -> int:
    """A descriptor of the folder `root` (its last component is not followed)."""
    try:
        parent = os.open(root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BadInput(root, "$", "a readable folder", exc.strerror or str(exc)) from None
    try:
        return _open_in(parent, root.name, root, want_dir=True)
    finally:
        os.close(parent)


def _open_in(dir_fd: int, name: str, shown: Path, want_dir: bool) -> int:
    try:
        fd = os.open(name, _DIR_FLAGS if want_dir else _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(exc, shown, dir_fd, name) from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)):
        os.close(fd)
        raise _refuse(shown, kind(mode))
    return fd


def _open_rel(root: Path, rel: str, want_dir: bool) -> int:
    """Open `root/rel` component by component, refusing a link at any of them."""
    parts = [p for p in rel.split("/") if p]
    if any(p in ("..", ".") for p in parts):
        raise BadInput(root / rel, "$", "a path inside the imported folder", rel)
    fd = open_root(root)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            shown = root.joinpath(*parts[: i + 1])
            nxt = _open_in(fd, part, shown, want_dir=want_dir or not last)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def entries(root: Path, rel: str = "") -> list[tuple[str, str]]:
    """(name, 'dir' | 'file') of the folder `root/rel`, sorted; anything else is refused."""
    fd = _open_rel(root, rel, want_dir=True)
    try:
        out = []
        for name in sorted(os.listdir(fd)):
            if name in SKIP_NAMES:
                continue
            shown = root / rel / name if rel else root / name
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except OSError as exc:
                raise _open_error(exc, shown, fd, name) from None
            if stat.S_ISDIR(mode):
                out.append((name, "dir"))
            elif stat.S_ISREG(mode):
                out.append((name, "file"))
            else:
                raise _refuse(shown, kind(mode))
        return out
    finally:
        os.close(fd)


def walk(root: Path, rel: str = "", budget: Budget | None = None) -> list[str]:
    """Every regular file under `root/rel` (relative posix paths from root), sorted;
    a link, device, FIFO or socket anywhere below is refused, and so is a tree more
    than MAX_DEPTH folders deep or (with a budget) with more folders than files allowed."""
    out: list[str] = []
    todo = [rel]
    folders = 0
    while todo:
        here = todo.pop()
        if here.count("/") - rel.count("/") > MAX_DEPTH:
            raise BadInput(root / here, "$", f"a folder at most {MAX_DEPTH} levels deep", "deeper")
        for name, what in entries(root, here):
            sub = f"{here}/{name}" if here else name
            if what == "dir":
                folders += 1
                if budget is not None and folders > budget.limits.max_files:
                    raise BadInput(root / rel, "$", f"at most {budget.limits.max_files} folders",
                                   "more", "raise EFFLAB_IMPORT_MAX_FILES to allow it")  # fmt: skip
                todo.append(sub)
            else:
                out.append(sub)
    return sorted(out)


def read(root: Path, rel: str, budget: Budget | None = None, cap: int | None = None) -> bytes:
    """The bytes of the regular file `root/rel`, charged to `budget`; `cap` bounds it
    further (a JSON file need not be as large as a table)."""
    shown = root / rel
    fd = _open_rel(root, rel, want_dir=False)
    try:
        size = os.fstat(fd).st_size
        caps = [c for c in (cap, budget.limits.max_file_bytes if budget else None) if c]
        limit = min(caps) if caps else None
        if limit is not None and size > limit:
            raise BadInput(shown, "$", f"a file of at most {limit} bytes", f"{size} bytes")
        if budget is not None:
            budget.charge(shown, size)
        chunks, total = [], 0
        while block := os.read(fd, 1 << 20):
            total += len(block)
            if total > size:  # grew while being read
                raise BadInput(shown, "$", f"a file of {size} bytes (as listed)", "a growing file")
            chunks.append(block)
        return b"".join(chunks)
    finally:
        os.close(fd)


def copy_file(root: Path, rel: str, dest: Path, budget: Budget | None = None) -> str:
    """Copy the regular file `root/rel` to `dest` (created, never overwritten);
    returns its sha256."""
    data = read(root, rel, budget)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def copy_tree(
    root: Path,
    dest: Path,
    budget: Budget | None = None,
    keep: Callable[[str, bytes], bool] | None = None,
) -> tuple[list[str], list[str]]:
    """Copy the regular files under `root` into `dest`, keeping their relative paths.

    `keep(rel, data)` decides which files are copied (default: all); returns (copied,
    left out). The whole tree is walked — and any link in it refused — first.
    """
    copied, left = [], []
    for rel in walk(root, budget=budget):
        data = read(root, rel, budget)
        if keep is not None and not keep(rel, data):
            left.append(rel)
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(data)
        copied.append(rel)
    return copied, left


IMAGE_MAGIC = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".webp": (b"RIFF",),
}


def is_image(rel: str, data: bytes) -> bool:
    """A raster image by name and by its first bytes (never SVG: SVG can hold scripts)."""
    magic = IMAGE_MAGIC.get(Path(rel).suffix.lower())
    return bool(magic) and any(data.startswith(m) for m in magic)
