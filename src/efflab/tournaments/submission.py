"""Tournament submissions: the participant's file, validated; script archives, unpacked safely.

A submission is a YAML/JSON file (participant, entry, inputs, optional claimed metrics,
optional archive) plus, optionally, a .tar.gz holding a script folder that replaces one
named step. Everything here is pure validation: anything wrong raises `Rejected`, which
the tournament records in its ledger as a rejected verdict (exit 1) — a participant's
mistake is a verdict, not a crash. Archives are never handed to `tarfile.extractall`:
every member is checked first (no absolute paths, no `..`, no links, no devices, bounded
size and count) and the whole archive is refused if one member is unsafe.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.specio import load_yaml, validate

DEFAULT_MAX_FILES = 200
DEFAULT_MAX_BYTES = 5 << 20
CHUNK = 1 << 16
# what a submitted folder may not change: the organiser's declaration and plan-time check
FIXED_FILES = ("meta.yaml", "check.py")


@dataclass
class Rejected(Exception):
    """A submission that can't be ranked; `stage` says where it was stopped."""

    stage: str  # window | schema | archive | plan | run | constraint
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"rejected ({self.stage}): {self.reason}"


@dataclass
class Submission:
    """A validated submission file (and where its archive is, if it has one)."""

    file: Path
    participant: str
    entry: str
    description: str
    inputs: dict[str, Any]
    claimed: dict[str, float]
    file_sha256: str
    archive: str | None = None  # as written in the file: resolved by efflab.tournaments.untrusted
    signature: str | None = None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def peek(file: Path) -> dict[str, Any]:
    """Participant and entry when readable (for the ledger of a rejected submission)."""
    try:
        data = _load(file)
    except BadInput:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in ("participant", "entry", "archive") if isinstance(data.get(k), str)}


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _load(file: Path) -> Any:
    """JSON when it looks like JSON (its numbers stay numbers), else YAML."""
    text = file.read_bytes()
    if file.suffix != ".json" and not text.lstrip().startswith(b"{"):
        return load_yaml(file)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(file, "$", "valid JSON", str(exc)) from None


def load_submission(
    file: Path,
    tournament_id: str,
    inputs_schema: dict[str, Any],
    metrics: dict[str, Any],
) -> Submission:
    """Parse and validate; the tournament's input schema applies under `$.inputs`.

    The `archive:` field is resolved by the caller (relative to the original file).
    """
    try:
        data = _load(file)
        validate(data, "submission", file)
        validate(data["inputs"], inputs_schema, file, prefix=("inputs",))
    except BadInput as exc:
        if exc.expected == "type number" and isinstance(exc.found, str) and _numeric(exc.found):
            exc.hint = "YAML 1.1 reads 1e-9 as text: write 1.0e-9"
        raise Rejected("schema", str(exc)) from None
    if data.get("tournament") not in (None, tournament_id):
        raise Rejected(
            "schema",
            f"{file}: $.tournament: expected '{tournament_id}', found {data['tournament']!r}",
        )
    claimed = data.get("claimed") or {}
    for name in claimed:
        if name not in metrics:
            raise Rejected(
                "schema",
                f"{file}: $.claimed.{name}: expected a metric of the measured step "
                f"({', '.join(sorted(metrics))}), found {name!r}",
            )
    return Submission(
        file=file,
        participant=data["participant"],
        entry=data["entry"],
        description=data.get("description", ""),
        inputs=dict(data["inputs"]),
        claimed={k: float(v) for k, v in claimed.items()},
        file_sha256=sha256_file(file),
        archive=data.get("archive"),
        signature=data.get("signature"),
    )


def pack_folder(folder: Path, dest: Path) -> None:
    """A folder as a deterministic .tar.gz; links stay links, so extraction refuses them."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with open(dest, "wb") as raw:
        with (
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
                for name in sorted(files) + [d for d in dirs if (Path(root) / d).is_symlink()]:
                    p = Path(root) / name
                    tar.add(p, arcname=str(p.relative_to(folder)), recursive=False, filter=clean)


def _member_problem(m: tarfile.TarInfo) -> str:
    """Why this member may not be extracted, or '' when it may."""
    name = m.name
    if not name or "\0" in name:
        return "an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return f"an absolute path {name!r}"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return f"a path with '..' {name!r}"
    if m.issym() or m.islnk():
        kind = "symlink" if m.issym() else "hard link"
        return f"a {kind} {name!r} -> {m.linkname!r} (links are not allowed)"
    if m.ischr() or m.isblk() or m.isfifo():
        return f"a device or fifo {name!r}"
    if not (m.isfile() or m.isdir()):
        return f"an unsupported member type {name!r}"
    return ""


def _relative(name: str) -> PurePosixPath:
    parts = [p for p in PurePosixPath(name).parts if p not in (".", "")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def safe_extract(
    archive: Path,
    dest: Path,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[str]:
    """Extract a script folder from `archive` into the new folder `dest`; the files' names.

    All-or-nothing: every member is checked before anything is written. A single
    top-level folder is stripped (`tar czf x.tar.gz myscript/` works as well as
    `tar czf x.tar.gz -C myscript .`). Sizes are counted while reading, not trusted
    from headers, so a decompression bomb stops at `max_bytes`.
    """
    size = archive.stat().st_size
    if size > max_bytes:
        raise Rejected("archive", f"{archive.name} is {size} bytes; the limit is {max_bytes}")
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise Rejected("archive", f"{archive.name} is not a .tar.gz archive ({exc})") from None
    with tar:
        files: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
        seen: set[PurePosixPath] = set()
        total = count = 0
        try:
            for m in tar:
                count += 1
                if count > max_files:
                    raise Rejected("archive", f"more than {max_files} members (the limit)")
                why = _member_problem(m)
                if why:
                    raise Rejected("archive", f"{archive.name} contains {why}")
                rel = _relative(m.name)
                if m.isfile():
                    if rel in seen:
                        raise Rejected("archive", f"{archive.name} holds {m.name!r} twice")
                    seen.add(rel)
                    total += m.size
                    if total > max_bytes:
                        raise Rejected("archive", f"more than {max_bytes} bytes unpacked")
                    files.append((m, rel))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise Rejected("archive", f"{archive.name} is corrupt ({exc})") from None
        if not files:
            raise Rejected("archive", f"{archive.name} holds no files")
        tops = {r.parts[0] for _, r in files}
        strip = len(tops) == 1 and all(len(r.parts) > 1 for _, r in files)
        dest.mkdir(parents=True)
        root = dest.resolve()
        written: list[str] = []
        unpacked = 0
        for m, rel in files:
            rel = PurePosixPath(*rel.parts[1:]) if strip else rel
            target = (root / rel).resolve()
            if not target.is_relative_to(root):  # unreachable after the checks; kept anyway
                raise Rejected("archive", f"{m.name!r} escapes the script folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m) or io.BytesIO()
            mode = 0o755 if m.mode & stat.S_IXUSR else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out:
                while block := src.read(CHUNK):
                    unpacked += len(block)
                    if unpacked > max_bytes:
                        raise Rejected("archive", f"more than {max_bytes} bytes unpacked")
                    out.write(block)
            written.append(str(rel))
        return sorted(written)


def check_script_folder(folder: Path, original: Path, run_file: str) -> None:
    """The submitted folder must hold the step's run file and keep the organiser's files."""
    if not (folder / run_file).is_file():
        raise Rejected(
            "archive",
            f"the script folder has no {run_file} (the step '{original.name}' runs {run_file})",
        )
    for name in FIXED_FILES:
        mine, theirs = folder / name, original / name
        if mine.exists() and (not theirs.exists() or mine.read_bytes() != theirs.read_bytes()):
            raise Rejected(
                "archive",
                f"{name} differs from the organiser's {original / name}: a submission replaces "
                "code only; inputs, outputs, limits and plan-time checks stay the tournament's",
            )
