"""A submission upload, streamed: multipart parsed chunk by chunk, limits enforced while reading.

Why not Starlette's `request.form()`: it spools whole files before the handler sees
them and bounds only non-file fields; an entry must be refused the moment it passes
its limit, never buffered whole. python-multipart's streaming parser gets each chunk
as it arrives; every part goes straight to its file under the tournament's
`incoming/` folder, its digest computed on the way.

Parts: `entry` (the submission file), optional `archive` (the script .tar.gz, packed
as `efflab tournament sign` packs it), and the fields `signature`, `nonce`,
`timestamp`. Part file names are ignored (we name the files), so path tricks in them
are inert. Anything else — an unknown or repeated part, a part over its limit, a body
over the total limit, a body cut short before the closing boundary, a client slower
than the deadline — is an UploadRefused with the HTTP status to answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FIELDS = ("signature", "nonce", "timestamp")
FILES = ("entry", "archive")
MAX_FIELD_BYTES = 4096
MAX_HEADER_BYTES = 8192


class UploadRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Upload:
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    limit: int = 0
    size: int = 0
    fh: object | None = None
    sha: object = None
    buf: bytearray = field(default_factory=bytearray)
    header_bytes: int = 0


class _Receiver:
    """python-multipart callbacks writing each part to disk within its limit."""

    def __init__(self, up: Upload, limits: dict[str, int]):
        self.up, self.limits = up, limits
        self.part: _Part | None = None
        self.field_name = b""
        self.field_value = b""
        self.seen: set[str] = set()
        self.ended = False

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.field_name, self.field_value = b"", b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.field_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.field_value += data[start:end]

    def _count(self, n: int) -> None:
        assert self.part is not None
        self.part.header_bytes += n
        if self.part.header_bytes > MAX_HEADER_BYTES:
            raise UploadRefused(400, "malformed-multipart", "a part's headers are over 8 KiB")

    def on_header_end(self) -> None:
        assert self.part is not None
        self.part.headers[self.field_name.decode("latin-1").lower()] = self.field_value.decode("latin-1")  # fmt: skip
        self.field_name, self.field_value = b"", b""

    def on_headers_finished(self) -> None:
        p = self.part
        assert p is not None
        disp, opts = parse_options_header(p.headers.get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if disp != b"form-data" or not name:
            raise UploadRefused(400, "malformed-multipart", "a part without Content-Disposition: form-data; name=...")  # fmt: skip
        if name not in FIELDS + FILES:
            raise UploadRefused(400, "unknown-part", f"unknown part {name[:40]!r}: expected entry, archive, signature, nonce, timestamp")  # fmt: skip
        if name in self.seen:
            raise UploadRefused(400, "repeated-part", f"the part {name!r} appears twice")
        self.seen.add(name)
        p.name, p.is_file = name, name in FILES
        p.limit = self.limits.get(name, MAX_FIELD_BYTES)
        if p.is_file:
            if p.limit <= 0:
                raise UploadRefused(400, "unexpected-archive", "this tournament takes no script archive")  # fmt: skip
            path = self.up.folder / ("entry.yaml" if name == "entry" else "archive.tar.gz")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            p.fh = os.fdopen(fd, "wb")
            p.sha = hashlib.sha256()
            self.up.files[name] = path

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        p = self.part
        assert p is not None
        n = end - start
        p.size += n
        if p.size > p.limit:
            raise UploadRefused(413, "part-too-large", f"the part {p.name!r} is over its limit of {p.limit} bytes")  # fmt: skip
        if p.is_file:
            p.fh.write(data[start:end])  # type: ignore[attr-defined]
            p.sha.update(data[start:end])  # type: ignore[attr-defined]
        else:
            p.buf += data[start:end]

    def on_part_end(self) -> None:
        p = self.part
        assert p is not None
        if p.is_file:
            p.fh.flush()  # type: ignore[attr-defined]
            os.fsync(p.fh.fileno())  # type: ignore[attr-defined]
            p.fh.close()  # type: ignore[attr-defined]
            p.fh = None
            self.up.digests[p.name] = p.sha.hexdigest()  # type: ignore[attr-defined]
            self.up.sizes[p.name] = p.size
        else:
            try:
                self.up.fields[p.name] = p.buf.decode("ascii").strip()
            except UnicodeDecodeError:
                raise UploadRefused(400, "bad-field", f"the field {p.name!r} is not ASCII") from None  # fmt: skip
        self.part = None

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.part is not None and self.part.fh is not None:
            self.part.fh.close()  # type: ignore[attr-defined]


async def receive(
    stream: AsyncIterator[bytes],
    content_type: str,
    folder: Path,
    limits: dict[str, int],
    total_limit: int,
    deadline_s: float,
    idle_s: float,
) -> Upload:
    """Parse the body into `folder` (which must exist and be empty)."""
    ctype, opts = parse_options_header(content_type)
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UploadRefused(415, "not-multipart", "expected a multipart/form-data body with a boundary")  # fmt: skip
    up = Upload(folder)
    rec = _Receiver(up, limits)
    callbacks = {
        "on_part_begin": rec.on_part_begin,
        "on_part_data": rec.on_part_data,
        "on_part_end": rec.on_part_end,
        "on_header_field": rec.on_header_field,
        "on_header_value": rec.on_header_value,
        "on_header_end": rec.on_header_end,
        "on_headers_finished": rec.on_headers_finished,
        "on_end": rec.on_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    total = 0
    t_end = time.monotonic() + deadline_s
    it = stream.__aiter__()
    try:
        while True:
            left = t_end - time.monotonic()
            if left <= 0:
                raise UploadRefused(408, "too-slow", f"the body did not arrive within {deadline_s:g} s")  # fmt: skip
            try:
                chunk = await asyncio.wait_for(it.__anext__(), min(left, idle_s))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise UploadRefused(408, "too-slow", f"no body bytes for {idle_s:g} s (or the whole body took over {deadline_s:g} s)") from None  # fmt: skip
            total += len(chunk)
            if total > total_limit:
                raise UploadRefused(413, "too-large", f"the body is over {total_limit} bytes")
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadRefused(400, "malformed-multipart", f"malformed multipart body ({exc})") from None  # fmt: skip
    finally:
        rec.close()
    if not rec.ended or rec.part is not None:
        raise UploadRefused(400, "truncated", "the body ended before the closing multipart boundary")  # fmt: skip
    if "entry" not in up.files:
        raise UploadRefused(400, "missing-entry", "no `entry` part (the submission file)")
    return up
