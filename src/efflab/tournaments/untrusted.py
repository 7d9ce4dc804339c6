"""Reading what a participant hands in without ever touching a host file they point at.

Why it exists: a submission is untrusted input read by a verifier that may run as
root. A submission file that is a symlink to `/etc/shadow`, or names
`archive: ../../etc/passwd` or `archive: /`, must never get a host file copied into
`results/`, printed, or written into the ledger. So, before anything is read or copied:

- every path component is opened with O_NOFOLLOW relative to its parent's descriptor
  (a symlink anywhere on the way is refused, including a swap after the check);
- what the submission file names must lie inside the submission's folder (no absolute
  paths, no `..`);
- sizes (and for a folder, file counts) are checked before a byte is copied;
- only regular files and folders are read: FIFOs, devices and sockets are refused.

Refusals are `Rejected` with our own message: it names the path the participant gave
and why, never the content of what it pointed at.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from efflab.tournaments.submission import Rejected

MAX_SUBMISSION_BYTES = 64 << 10  # a submission file is a few lines of YAML
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass
class Untrusted:
    """A participant's file or folder, read through descriptors that never follow links."""

    shown: str  # the path as the participant gave it (for messages)
    is_dir: bool
    files: dict[str, bytes] = field(default_factory=dict)  # relative posix path -> bytes
    dirs: list[str] = field(default_factory=list)  # relative folders (empty ones kept)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def _relative_parts(name: str, shown: str) -> list[str]:
    """The components of a relative, downward path; Rejected for absolute or `..` paths."""
    if not name or "\0" in name:
        raise Rejected("archive", f"{shown}: an empty or NUL-containing path")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith("~"):
        raise Rejected("archive", f"{shown}: an absolute path; it must lie inside the submission's folder")  # fmt: skip
    parts = [x for x in p.parts if x not in ("", ".")]
    if ".." in parts:
        raise Rejected("archive", f"{shown}: a path with '..'; it must lie inside the submission's folder")  # fmt: skip
    if not parts:
        raise Rejected("archive", f"{shown}: names the submission's folder itself")
    return parts


def _open_dir_chain(base: int, parts: list[str], shown: str) -> int:
    """Descend `parts` from the open folder `base`, refusing any symlink on the way."""
    fd = os.dup(base)
    for part in parts:
        try:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            link = _is_link(part, fd)
            os.close(fd)
            why = f"'{part}' is a symbolic link (links are never followed)" if link else _why(exc, part)  # fmt: skip
            raise Rejected("archive", f"{shown}: {why}") from None
        os.close(fd)
        fd = nxt
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _why(exc: OSError, part: str) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return f"'{part}' is a symbolic link (links are never followed)"
    if exc.errno == errno.ENOTDIR:
        return f"'{part}' is not a folder (or is a link)"
    if exc.errno == errno.ENOENT:
        return f"'{part}' does not exist"
    return f"'{part}' cannot be opened ({exc.strerror})"


def _read_fd(fd: int, shown: str, limit: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise Rejected("schema", f"{shown}: not a regular file (a device, FIFO or socket)")
    if st.st_size > limit:
        raise Rejected("archive", f"{shown} is {st.st_size} bytes; the limit is {limit}")
    chunks, total = [], 0
    while block := os.read(fd, 1 << 16):
        total += len(block)
        if total > limit:  # grew while reading
            raise Rejected("archive", f"{shown} is more than {limit} bytes; the limit is {limit}")
        chunks.append(block)
    return b"".join(chunks)


def read_submission_file(path: Path, limit: int = MAX_SUBMISSION_BYTES) -> bytes:
    """The bytes of the submission file itself: not a link, a regular file, ≤ limit."""
    shown = str(path)
    parent = os.path.abspath(path.parent)
    try:
        dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise Rejected("schema", f"{shown}: its folder cannot be opened ({exc.strerror})") from None
    try:
        fd = os.open(path.name, _FILE_FLAGS, dir_fd=dfd)
    except OSError as exc:
        raise Rejected("schema", f"{shown}: {_why(exc, path.name)}") from None
    finally:
        os.close(dfd)
    try:
        return _read_fd(fd, shown, limit)
    finally:
        os.close(fd)


def read_named(
    folder: Path, name: str, max_files: int, max_bytes: int, shown: str | None = None
) -> Untrusted:
    """What `name` (from a submission file) names under `folder`: a file or a folder tree.

    All-or-nothing: counts and sizes are checked while reading into memory, so nothing
    is copied anywhere unless the whole of it is within the limits.
    """
    shown = shown or name
    parts = _relative_parts(name, shown)
    try:
        base = os.open(os.path.abspath(folder), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise Rejected("archive", f"{shown}: the submission's folder cannot be opened ({exc.strerror})") from None  # fmt: skip
    try:
        pfd = _open_dir_chain(base, parts[:-1], shown)
    finally:
        os.close(base)
    try:
        return _read_entry(pfd, parts[-1], shown, max_files, max_bytes)
    finally:
        os.close(pfd)


def read_path(path: Path, max_files: int, max_bytes: int) -> Untrusted:
    """A path given on the command line (`--archive`): the last component is not followed."""
    pfd = os.open(os.path.abspath(path.parent), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _read_entry(pfd, path.name, str(path), max_files, max_bytes)
    finally:
        os.close(pfd)


def _read_entry(pfd: int, name: str, shown: str, max_files: int, max_bytes: int) -> Untrusted:
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except OSError as exc:
        raise Rejected("archive", f"{shown}: {_why(exc, name)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise Rejected("archive", f"{shown}: '{name}' is a symbolic link (links are never followed)")  # fmt: skip
    if stat.S_ISREG(st.st_mode):
        fd = os.open(name, _FILE_FLAGS, dir_fd=pfd)
        try:
            return Untrusted(shown, False, {name: _read_fd(fd, shown, max_bytes)})
        finally:
            os.close(fd)
    if not stat.S_ISDIR(st.st_mode):
        raise Rejected("archive", f"{shown}: not a regular file or folder")
    out = Untrusted(shown, True)
    fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
    try:
        _walk(fd, "", out, max_files, max_bytes)
    finally:
        os.close(fd)
    return out


def _walk(dfd: int, prefix: str, out: Untrusted, max_files: int, max_bytes: int) -> None:
    for name in sorted(os.listdir(dfd)):
        if name in ("__pycache__", ".git"):
            continue
        rel = f"{prefix}{name}"
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise Rejected("archive", f"{out.shown}: '{rel}' is a symbolic link (links are not allowed)")  # fmt: skip
        if stat.S_ISDIR(st.st_mode):
            out.dirs.append(rel)
            sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                _walk(sub, rel + "/", out, max_files, max_bytes)
            finally:
                os.close(sub)
            continue
        if not stat.S_ISREG(st.st_mode):
            raise Rejected("archive", f"{out.shown}: '{rel}' is a device, FIFO or socket")
        if len(out.files) + 1 > max_files:
            raise Rejected("archive", f"{out.shown}: more than {max_files} files (the limit)")
        if out.size + st.st_size > max_bytes:
            raise Rejected("archive", f"{out.shown}: more than {max_bytes} bytes (the limit)")
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
        try:
            out.files[rel] = _read_fd(fd, f"{out.shown}/{rel}", max_bytes - out.size)
        finally:
            os.close(fd)


def archive_bytes(u: Untrusted) -> bytes:
    """What is stored as script.tar.gz: a file's own bytes, or a folder packed in memory.

    The packing is deterministic (sorted names, mtime 0, uid 0, gzip mtime 0), so a
    participant's `efflab tournament sign` computes the same digest as the verifier.
    """
    if not u.is_dir:
        return next(iter(u.files.values()))
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with (
        gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in sorted([*u.files, *u.dirs]):
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            if rel in u.files:
                info.size, info.mode = len(u.files[rel]), 0o644
                tar.addfile(info, io.BytesIO(u.files[rel]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    return buf.getvalue()
