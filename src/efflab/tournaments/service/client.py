"""The participant's side of the service: `efflab tournament submit T FILE --server URL`.

Reads the entry (and its archive, packed as `efflab tournament sign` packs it) the way
the verifier will, signs the digests with a fresh nonce and the current time, streams
the upload, then follows the submission until its verdict. Exit codes are the local
command's: 0 accepted, 1 rejected / infrastructure-error / refused by a check,
2 bad input — an error answer carries its `exit_code`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from efflab.core.clock import now_iso
from efflab.core.errors import BadInput
from efflab.tournaments import identity, untrusted
from efflab.tournaments.submission import Rejected

API = "/api/v1"
CHUNK = 1 << 16


@dataclass
class Answer:
    """What the server said: its JSON and the exit code it means."""

    status: int
    body: dict[str, Any]
    retry_after: float | None = None

    @property
    def exit_code(self) -> int:
        if "error" in self.body:
            return int(self.body["error"].get("exit_code", 1))
        return int(self.body.get("exit_code") or 0)


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str, progress: Callable[[int, int], None]) -> tuple[Iterator[bytes], int]:  # fmt: skip
    pieces: list[bytes] = []
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = "application/octet-stream" if filename else "text/plain"
        pieces += [f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n".encode(), data, b"\r\n"]  # fmt: skip
    pieces.append(f"--{boundary}--\r\n".encode())
    total = sum(len(p) for p in pieces)

    def gen() -> Iterator[bytes]:
        sent = 0
        for p in pieces:
            for i in range(0, len(p), CHUNK):
                block = p[i : i + CHUNK]
                sent += len(block)
                progress(sent, total)
                yield block

    return gen(), total


def prepare(tid: str, file: Path, archive: Path | None, key: Path | None, max_archive: int = 64 << 20) -> list[tuple[str, str | None, bytes]]:  # fmt: skip
    """The upload's parts: the entry, its packed archive, and the signature fields."""
    if not file.exists():
        raise BadInput(file, "$", "an existing submission file", "no such file")
    try:
        data = untrusted.read_submission_file(file)
        from efflab.tournaments.submission import peek

        named = peek(file).get("archive")
        blob = None
        if archive is not None:
            blob = untrusted.archive_bytes(untrusted.read_path(archive, 10_000, max_archive))
        elif named:
            blob = untrusted.archive_bytes(untrusted.read_named(file.parent, named, 10_000, max_archive, f"{file}: $.archive"))  # fmt: skip
    except Rejected as exc:
        raise BadInput(file, "$", "a readable submission (and archive)", exc.reason) from None
    parts: list[tuple[str, str | None, bytes]] = [("entry", "entry.yaml", data)]
    if blob is not None:
        parts.append(("archive", "archive.tar.gz", blob))
    if key is not None:
        priv = identity.load_private(key)
        nonce, stamp = secrets.token_urlsafe(24), now_iso()
        fields = identity.signed_fields(
            tid,
            hashlib.sha256(data).hexdigest(),
            hashlib.sha256(blob).hexdigest() if blob is not None else None,
            nonce,
            stamp,
        )
        sig = identity.sign(priv, identity.message_bytes(fields))
        parts += [("signature", None, sig.encode()), ("nonce", None, nonce.encode()), ("timestamp", None, stamp.encode())]  # fmt: skip
    return parts


def _answer(r: httpx.Response) -> Answer:
    try:
        body = r.json()
    except ValueError:
        body = {"error": {"status": r.status_code, "code": "not-json", "message": r.text[:300], "exit_code": 1}}  # fmt: skip
    if not isinstance(body, dict):
        body = {"value": body}
    ra = r.headers.get("retry-after", "")
    return Answer(r.status_code, body, min(float(ra), 60.0) if ra.isdigit() else None)


def upload(server: str, tid: str, parts: list[tuple[str, str | None, bytes]], progress: Callable[[int, int], None] = lambda a, b: None, timeout: float = 120.0, on_busy: Callable[[float], None] = lambda s: None, busy_limit_s: float = 60.0) -> Answer:  # fmt: skip
    """Stream the upload; a 503 "busy" (too many uploads in flight) is sent again after
    its Retry-After, for up to `busy_limit_s` — the server refused it before reading the
    body, so the signed nonce was not spent and the same parts are valid again."""
    t_end = time.monotonic() + busy_limit_s
    with httpx.Client(base_url=server.rstrip("/"), timeout=timeout) as c:
        while True:
            boundary = uuid.uuid4().hex
            body, total = _multipart(parts, boundary, progress)
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(total)}  # fmt: skip
            a = _answer(c.post(f"{API}/tournaments/{tid}/submissions", content=body, headers=headers))  # fmt: skip
            code = a.body.get("error", {}).get("code") if isinstance(a.body.get("error"), dict) else None  # fmt: skip
            wait = _retry_after(a)
            if a.status != 503 or code != "busy" or time.monotonic() + wait > t_end:
                return a
            on_busy(wait)
            time.sleep(wait)


def _retry_after(a: Answer) -> float:
    """The busy answer's Retry-After is in its headers; the JSON carries no number."""
    return float(a.retry_after) if a.retry_after is not None else 2.0


def status(server: str, sid: str, timeout: float = 30.0) -> Answer:
    with httpx.Client(base_url=server.rstrip("/"), timeout=timeout) as c:
        return _answer(c.get(f"{API}/submissions/{sid}"))


def wait(server: str, sid: str, on_change: Callable[[dict[str, Any]], None], poll_s: float = 1.0, limit_s: float = 24 * 3600) -> Answer:  # fmt: skip
    """Poll until the submission has a final verdict (or the server says it is unknown)."""
    last: tuple[Any, ...] = ()
    t_end = time.monotonic() + limit_s
    while True:
        try:
            a = status(server, sid)
        except httpx.TransportError:  # the server restarting: nothing accepted is lost
            time.sleep(max(poll_s, 2.0))
            continue
        if a.status != 200:
            return a
        now = (a.body.get("status"), a.body.get("position"), a.body.get("retries"))
        if now != last:
            on_change(a.body)
            last = now
        if a.body.get("status") in ("accepted", "rejected", "infrastructure-error") or time.monotonic() > t_end:  # fmt: skip
            return a
        time.sleep(poll_s)
