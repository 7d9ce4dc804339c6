"""The submission service's HTTP API (Starlette on uvicorn).

Why Starlette, not FastAPI: the one hard endpoint, the upload, is a hand-driven
streamed multipart parse with limits enforced while reading (upload.py) — FastAPI's
request models and `UploadFile` would sit unused around it, and its pydantic layer
would be a second schema language beside the JSON Schemas efflab already validates
with. Starlette gives the ASGI routing, streaming request bodies, responses and an
OpenAPI generator from the handlers' docstrings, on uvicorn.

Every error is `{"error": {"status", "code", "message", "exit_code"}}`: `exit_code`
is what the CLI would exit with for the same outcome (2: bad input — 400, 404, 408,
413, 415; 1: a failed check — 401 signature, 403 key or token, 409 replay or closed
window, 429 attempt limit, 503 full queue with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from efflab.core.errors import BadInput
from efflab.core.specio import canonical_json
from efflab.tournaments import attempts, identity
from efflab.tournaments.ledger import Ledger, LedgerTampered, attempts_only
from efflab.tournaments.organiser import tournament_ledger
from efflab.tournaments.service.queue import Job, OverLimit, Queue, QueueFull
from efflab.tournaments.service.upload import UploadRefused, receive
from efflab.tournaments.spec import Tournament, load_tournament, tournament_ids
from efflab.tournaments.submission import peek
from efflab.tournaments.untrusted import MAX_SUBMISSION_BYTES

API = "/api/v1"
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")
RUN_KEY = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
MAX_RECORD_BYTES = 1 << 20
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
EXIT = {400: 2, 404: 2, 405: 2, 408: 2, 413: 2, 415: 2, 422: 2, 401: 1, 403: 1, 409: 1, 429: 1, 503: 1}  # fmt: skip
LIVE_JS = """\
// efflab live leaderboard: reload when the ledger's head changes (a verdict landed)
(function () {
  var el = document.querySelector("meta[name=efflab-head]");
  var api = document.querySelector("meta[name=efflab-head-api]");
  if (!el || !api) return;
  var head = el.getAttribute("content");
  setInterval(function () {
    fetch(api.getAttribute("content"), {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j.head !== head) { location.reload(); } })
      .catch(function () {});
  }, 2000);
})();
"""


@dataclass
class Settings:
    """Server settings (`efflab tournament serve --help` names each)."""

    host: str = "127.0.0.1"
    port: int = 8787
    tournaments: list[str] | None = None  # None: every tournament of the project
    organiser_token: str = ""
    worker_token: str = ""
    local_worker: bool = True
    queue_cap: int = 200
    max_uploads: int = 8
    max_body_bytes: int = 16 << 20
    body_timeout_s: float = 60.0
    idle_timeout_s: float = 15.0
    clock_skew_s: float = 300.0
    lease_s: float = 120.0
    infra_retries: int = 2
    machine_class: str | None = None  # workers must report this class
    worker_python: list[str] = field(default_factory=lambda: [sys.executable])


def service_dir(repo: Path) -> Path:
    return repo / "results" / "tournaments" / ".service"


def load_tokens(repo: Path) -> dict[str, str]:
    """The organiser and worker tokens: $EFFLAB_ORGANISER_TOKEN / $EFFLAB_WORKER_TOKEN, else
    results/tournaments/.service/tokens.json (0600, made on first start, kept after)."""
    f = service_dir(repo) / "tokens.json"
    if not f.is_file():
        f.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"organiser": secrets.token_urlsafe(32), "worker": secrets.token_urlsafe(32)})  # fmt: skip
        try:
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
        except FileExistsError:
            pass
    kept = json.loads(f.read_text())
    return {
        "organiser": os.environ.get("EFFLAB_ORGANISER_TOKEN") or kept["organiser"],
        "worker": os.environ.get("EFFLAB_WORKER_TOKEN") or kept["worker"],
    }


def new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    if status == 503 and not headers:
        headers = {"Retry-After": "30"}
    body = {"error": {"status": status, "code": code, "message": message, "exit_code": EXIT.get(status, 1)}}  # fmt: skip
    return JSONResponse(body, status_code=status, headers=headers)


class Service:
    """What the handlers share: the project, settings, queue, caches, the local worker."""

    def __init__(self, repo: Path, settings: Settings):
        self.repo = repo
        self.s = settings
        self.queue = Queue(service_dir(repo) / "queue.sqlite")
        self.uploads = asyncio.Semaphore(settings.max_uploads)
        self.in_flight = 0
        self.boards: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self.chains: dict[str, tuple[tuple[int, int, int], list[dict[str, Any]]]] = {}
        self.append_lock = threading.Lock()
        self.worker: subprocess.Popen[bytes] | None = None
        self.supervisor: asyncio.Task[None] | None = None
        ids = settings.tournaments or tournament_ids(repo)
        self.tournaments: dict[str, Tournament] = {tid: load_tournament(repo, tid) for tid in ids}

    # ------------------------------------------------------------------ helpers

    def tournament(self, tid: str) -> Tournament | None:
        return self.tournaments.get(tid)

    def window(self, t: Tournament) -> str:
        """open | closed | upcoming: the organiser's override, else the spec's dates."""
        return self.queue.window(t.id) or t.status()

    def ledger_entries(self, t: Tournament) -> list[dict[str, Any]]:
        """The verified chain, re-read only when the file changed (every upload asks)."""
        f = t.root(self.repo) / "ledger.jsonl"
        try:
            st = f.stat()
            mark = (st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return []
        hit = self.chains.get(t.id)
        if hit is not None and hit[0] == mark:
            return hit[1]
        entries = Ledger(f).entries()
        self.chains[t.id] = (mark, entries)
        return entries

    def board(self, t: Tournament) -> dict[str, Any]:
        """The leaderboard, rebuilt only when the ledger changed."""
        from efflab.tournaments.leaderboard import build

        f = t.root(self.repo) / "ledger.jsonl"
        try:
            st = f.stat()
            mark = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            mark = (0, 0)
        hit = self.boards.get(t.id)
        if hit and hit[0] == mark:
            return hit[1]
        b = build(self.repo, t)
        self.boards[t.id] = (mark, b)
        return b

    def head(self, t: Tournament) -> str | None:
        f = t.root(self.repo) / "ledger.jsonl"
        if not f.is_file():
            return None
        with open(f, "rb") as fh:  # the last line's hash, no full verification
            fh.seek(max(0, f.stat().st_size - 65536))
            tail = fh.read().splitlines()
        try:
            return str(json.loads(tail[-1])["hash"]) if tail else None
        except (ValueError, KeyError, IndexError):
            return None

    def sweep(self) -> None:
        """After a crash: half-received uploads go; an upload never acknowledged (renamed
        but not queued) goes; local workers' leases come back to the queue."""
        known = self.queue.ids()
        for t in self.tournaments.values():
            root = t.root(self.repo)
            shutil.rmtree(root / "incoming", ignore_errors=True)
            subs = root / "submissions"
            if subs.is_dir():
                for up in subs.glob("*/upload"):
                    if up.parent.name not in known:
                        shutil.rmtree(up.parent, ignore_errors=True)
        self.queue.requeue_owned("local:")

    # ------------------------------------------------------------ local worker

    def start_worker(self) -> None:
        cmd = [
            *self.s.worker_python, "-m", "efflab", "--repo", str(self.repo), "tournament",
            "worker", "--server", f"http://{self.s.host}:{self.s.port}", "--local", "--quiet",
        ]  # fmt: skip
        env = {**os.environ, "EFFLAB_WORKER_TOKEN": self.s.worker_token, "EFFLAB_SERVICE_PID": str(os.getpid())}  # fmt: skip
        log = open(service_dir(self.repo) / "worker.log", "ab")  # noqa: SIM115 - the child keeps it
        self.worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)  # fmt: skip
        log.close()

    async def supervise(self) -> None:
        """Keep one local worker alive; a dead one's job goes back to the queue at once."""
        while True:
            await asyncio.sleep(0.5)
            w = self.worker
            if w is not None and w.poll() is not None:
                self.queue.requeue_owned(f"local:{w.pid}")
                await asyncio.sleep(1.0)
                self.start_worker()

    def stop_worker(self) -> None:
        w = self.worker
        if w is not None and w.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, 15)
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, 9)

    # ------------------------------------------------------------- recording

    def already_recorded(self, t: Tournament, attempt_id: str) -> dict[str, Any] | None:
        for e in reversed(attempts_only(self.ledger_entries(t))):
            if e["submission"].get("id") == attempt_id:
                return e
        return None

    def finish(self, job: Job, entry: dict[str, Any], worker: dict[str, Any] | None) -> Job:
        retry = entry["verdict"] == attempts.INFRA and job.retries < self.s.infra_retries
        return self.queue.record(job.id, entry["seq"], entry["verdict"], entry.get("reason"), worker, retry)  # fmt: skip


def _authorised(request: Request, token: str) -> bool:
    got = request.headers.get("authorization", "")
    return bool(token) and hmac.compare_digest(got.encode(), f"Bearer {token}".encode())


def _svc(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


async def _json_body(request: Request, limit: int = 64 << 10) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise UploadRefused(413, "too-large", f"the JSON body is over {limit} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise UploadRefused(400, "bad-json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UploadRefused(400, "bad-json", "the body is not a JSON object")
    return data


# ---------------------------------------------------------------- public API


async def health(request: Request) -> JSONResponse:
    """
    responses:
      200:
        description: the service answers; queue counts by state.
    """
    svc = _svc(request)
    w = svc.worker
    return JSONResponse({
        "ok": True, "queue": svc.queue.counts(), "uploads_in_flight": svc.in_flight,
        "local_worker_pid": w.pid if w is not None and w.poll() is None else None,
    })  # fmt: skip


async def list_tournaments(request: Request) -> JSONResponse:
    """
    responses:
      200:
        description: the tournaments this server takes submissions for.
    """
    svc = _svc(request)
    return JSONResponse(
        [
            {"id": t.id, "title": t.title, "status": svc.window(t), "identity": t.identity}
            for t in svc.tournaments.values()
        ]  # fmt: skip
    )


def _rules(svc: Service, t: Tournament) -> dict[str, Any]:
    from efflab.tournaments.leaderboard import ranking_rule
    from efflab.tournaments.spec import example_submission

    return {
        "id": t.id,
        "title": t.title,
        "description": t.description,
        "status": svc.window(t),
        "identity": t.identity,
        "submission_inputs": t.inputs_schema,
        "script": vars(t.script) if t.script else None,
        "objectives": [vars(o) for o in t.objectives],
        "constraints": [c.text() for c in t.constraints],
        "ranking": ranking_rule(t),
        "attempts": {"limit": t.limit, "window_h": t.window_h},
        "verification": {
            "repetitions": t.repetitions,
            "aggregate": t.aggregate,
            "limits": t.limits,
        },  # fmt: skip
        "example_submission": example_submission(t),
        "upload": {
            "max_entry_bytes": MAX_SUBMISSION_BYTES,
            "max_archive_bytes": t.script.max_bytes if t.script else 0,
            "clock_skew_s": svc.s.clock_skew_s,
        },  # fmt: skip
    }


async def tournament_rules(request: Request) -> Response:
    """
    responses:
      200:
        description: the tournament's rules (inputs schema, objectives, limits).
      404:
        description: no such tournament.
    """
    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    return JSONResponse(_rules(svc, t))


async def leaderboard_json(request: Request) -> Response:
    """
    responses:
      200:
        description: the leaderboard, ranked from the ledger's proven entries.
      404:
        description: no such tournament.
      409:
        description: the ledger does not verify.
    """
    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    try:
        b = await run_in_threadpool(svc.board, t)
    except LedgerTampered as exc:
        return error(409, "ledger-tampered", str(exc))
    return JSONResponse(b)


async def ledger_head(request: Request) -> Response:
    """
    responses:
      200:
        description: the ledger's current head hash (cheap; the live page polls it).
    """
    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    return JSONResponse({"head": svc.head(t)}, headers={"Cache-Control": "no-store"})


async def submit(request: Request) -> Response:
    """
    requestBody:
      required: true
      content:
        multipart/form-data:
          schema:
            type: object
            required: [entry]
            properties:
              entry: {type: string, format: binary, description: the submission file}
              archive: {type: string, format: binary, description: the script .tar.gz}
              signature: {type: string, description: base64 Ed25519 over the signed fields}
              nonce: {type: string, description: "16-128 letters, digits, _ or -; used once"}
              timestamp: {type: string, description: ISO 8601 time of signing}
    responses:
      202:
        description: stored and queued; the submission id and its place in the queue.
      400:
        description: malformed, truncated or incomplete upload.
      401:
        description: unsigned, bad or stale signature.
      403:
        description: the participant has no registered key.
      408:
        description: the body arrived too slowly.
      409:
        description: a replayed nonce, or the window is not open.
      413:
        description: over a size limit.
      429:
        description: over the participant's attempt limit.
      503:
        description: the queue is full or too many uploads are in flight (Retry-After).
    """
    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    state = svc.window(t)
    if state != "open":
        return error(409, "window-closed", f"the tournament is {state}: no submissions now")
    if svc.uploads.locked():
        return error(503, "busy", f"{svc.s.max_uploads} uploads are in flight; try again", {"Retry-After": "2"})  # fmt: skip
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > svc.s.max_body_bytes):
        return error(413, "too-large", f"the body is over {svc.s.max_body_bytes} bytes")
    async with svc.uploads:
        svc.in_flight += 1
        try:
            return await _take_upload(svc, t, request)
        finally:
            svc.in_flight -= 1


async def _take_upload(svc: Service, t: Tournament, request: Request) -> Response:
    root = t.root(svc.repo)
    incoming = root / "incoming" / secrets.token_hex(8)
    incoming.mkdir(parents=True)
    limits = {"entry": MAX_SUBMISSION_BYTES, "archive": t.script.max_bytes if t.script else 0}
    try:
        try:
            up = await receive(
                request.stream(), request.headers.get("content-type", ""), incoming, limits,
                svc.s.max_body_bytes, svc.s.body_timeout_s, svc.s.idle_timeout_s,
            )  # fmt: skip
        except ClientDisconnect:
            raise UploadRefused(400, "truncated", "the client went away mid-upload") from None
        sid, pos = await run_in_threadpool(_admit_and_queue, svc, t, up, incoming)
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return JSONResponse(
        {"id": sid, "tournament": t.id, "status": "queued", "position": pos,
         "status_url": f"{API}/submissions/{sid}"},
        status_code=202,
    )  # fmt: skip


def _admit_and_queue(svc: Service, t: Tournament, up: Any, incoming: Path) -> tuple[str, int]:
    """Checks, then the upload renamed into place and fsynced, then its queue row: both
    on disk before the 202 (off the event loop: fsyncs take milliseconds)."""
    job = _admit(svc, t, up)
    root = t.root(svc.repo)
    sid = new_id()
    final = root / "submissions" / sid / "upload"
    final.parent.mkdir(parents=True)
    os.rename(incoming, final)
    _fsync_dir(final.parent)
    job.update(id=sid, tournament=t.id, has_archive="archive" in up.files)
    try:
        return sid, svc.queue.add(job, svc.s.queue_cap, job.pop("used"), t.limit)
    except QueueFull as exc:
        shutil.rmtree(final.parent, ignore_errors=True)
        raise UploadRefused(503, "queue-full", str(exc)) from None
    except OverLimit as exc:
        shutil.rmtree(final.parent, ignore_errors=True)
        raise UploadRefused(429, "attempt-limit", f"{exc} per {t.window_h:g} h") from None


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _admit(svc: Service, t: Tournament, up: Any) -> dict[str, Any]:
    """Identity, freshness, replay and the attempt limit, checked before the 202."""
    known = peek(up.files["entry"])
    who = known.get("participant")
    if not isinstance(who, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", who):
        raise UploadRefused(400, "bad-entry", "the entry names no valid `participant:` (YAML or JSON, a name of letters, digits and _.@-)")  # fmt: skip
    sig, nonce, stamp = (up.fields.get(k) for k in ("signature", "nonce", "timestamp"))
    job: dict[str, Any] = {
        "participant": who,
        "entry": known.get("entry") if isinstance(known.get("entry"), str) else None,
        "sub_sha256": up.digests["entry"],
        "archive_sha256": up.digests.get("archive"),
    }
    if t.identity == "keys":
        if not sig or not nonce or not stamp:
            raise UploadRefused(401, "unsigned", "this tournament takes only signed uploads: signature, nonce and timestamp over the files' digests (`efflab tournament submit --server URL --key KEY`)")  # fmt: skip
        if not NONCE.match(nonce):
            raise UploadRefused(400, "bad-nonce", "the nonce must be 16-128 characters of [A-Za-z0-9_-]")  # fmt: skip
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            raise UploadRefused(400, "bad-timestamp", "the timestamp is not ISO 8601") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        skew = abs((datetime.now(UTC) - when).total_seconds())
        if skew > svc.s.clock_skew_s:
            raise UploadRefused(401, "stale-signature", f"signed {skew:.0f} s away from the server's clock; the limit is {svc.s.clock_skew_s:g} s")  # fmt: skip
        try:
            key = identity.replay(svc.ledger_entries(t)).get(who)
        except LedgerTampered as exc:
            raise UploadRefused(503, "ledger-tampered", str(exc)) from None
        if key is None:
            raise UploadRefused(403, "unregistered", f"'{who}' has no registered key in this tournament (the organiser registers it)")  # fmt: skip
        fields = identity.signed_fields(t.id, up.digests["entry"], up.digests.get("archive"), nonce, stamp)  # fmt: skip
        if not identity.verify_signature(key.public_b64, identity.message_bytes(fields), sig):
            raise UploadRefused(401, "bad-signature", f"the signature does not verify with the key registered for '{who}' ({key.fingerprint}) over these files, nonce and time")  # fmt: skip
        if not svc.queue.use_nonce(nonce, who, 2 * svc.s.clock_skew_s + 60):
            raise UploadRefused(409, "replayed", "this nonce was used before: a replayed upload")
        job.update(signature=sig, signed=fields, key=key.fingerprint)
    now = datetime.now(UTC)
    job["used"] = len(attempts.attempts_in_window(attempts_only(svc.ledger_entries(t)), t, who, now))  # fmt: skip
    return job


async def status(request: Request) -> Response:
    """
    responses:
      200:
        description: queued (with its position), running, accepted, rejected or infrastructure-error (with retries); the ledger lines when done.
      404:
        description: no such submission.
    """
    svc = _svc(request)
    jid = request.path_params["sid"]
    job = svc.queue.get(jid) if ID.match(jid) else None
    if job is None:
        return error(404, "unknown-submission", "no such submission")
    out = job.to_json()
    out["position"] = svc.queue.position(jid) if job.state == "queued" else None
    out["exit_code"] = {"accepted": 0, "rejected": 1, "infrastructure-error": 1}.get(job.state)
    if job.seqs:
        t = svc.tournament(job.tournament)
        entries = svc.ledger_entries(t) if t else []
        out["ledger"] = [entries[s] for s in job.seqs if s < len(entries)]
    return JSONResponse(out)


# ----------------------------------------------------------------- HTML pages


def _page(title: str, body: str, meta: str = "") -> HTMLResponse:
    from efflab.results.render import BASE_CSS

    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{meta}<style>{BASE_CSS}</style>"
        f"<script src='/static/live.js' defer></script></head><body>{body}</body></html>\n"
    )
    return HTMLResponse(doc, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})  # fmt: skip


async def leaderboard_page(request: Request) -> Response:
    """
    responses:
      200:
        description: the live leaderboard page (reloads when a verdict lands).
    """
    from efflab.tournaments.render import to_html

    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    try:
        b = await run_in_threadpool(svc.board, t)
    except LedgerTampered as exc:
        return error(409, "ledger-tampered", str(exc))
    doc = to_html(b, t, None)  # escapes every participant string
    body = doc[doc.index("<body>") + 6 : doc.rindex("</body>")]
    e = html.escape
    nav = f"<p><a href='/tournaments/{e(t.id)}/rules'>rules and how to enter</a> · <a href='{API}/tournaments/{e(t.id)}/leaderboard'>JSON</a></p>"  # fmt: skip
    meta = (
        f"<meta name='efflab-head' content='{e(str(b['ledger']['head']))}'>"
        f"<meta name='efflab-head-api' content='{API}/tournaments/{e(t.id)}/head'>"
    )
    return _page(f"Leaderboard: {b['title']}", nav + body, meta)


async def rules_page(request: Request) -> Response:
    """
    responses:
      200:
        description: the tournament's rules and how a participant enters.
    """
    import yaml

    svc = _svc(request)
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return error(404, "unknown-tournament", "no such tournament on this server")
    r = _rules(svc, t)
    e = html.escape
    host = f"http://{svc.s.host}:{svc.s.port}"
    props = "".join(f"<tr><td><code>{e(k)}</code></td><td><code>{e(json.dumps(v))}</code></td></tr>" for k, v in (t.inputs_schema.get("properties") or {}).items())  # fmt: skip
    body = (
        f"<h1>{e(t.title)}</h1><p>{e(t.description)}</p>"
        f"<p>Status: <b>{e(r['status'])}</b>. Ranking: {e(r['ranking'])}. Constraints: {e(', '.join(r['constraints']) or 'none')}.</p>"
        f"<h2>What a submission may set</h2><table><tr><th>input</th><th>schema</th></tr>{props}</table>"
        f"<p>At most {t.limit} attempts per {t.window_h:g} h. Each entry is verified in a sealed container, "
        f"{t.repetitions} repetitions ({e(t.aggregate)}); claimed numbers are only flagged.</p>"
        f"<h2>Example submission</h2><pre>{e(yaml.safe_dump(r['example_submission'], sort_keys=False))}</pre>"
        "<h2>How to enter</h2><pre>"
        f"efflab tournament keygen me.key            # send me.key.pub to the organiser\n"
        f"efflab tournament submit {e(t.id)} entry.yaml --server {e(host)} --key me.key\n"
        f"efflab tournament status ID --server {e(host)}</pre>"
        f"<p><a href='/tournaments/{e(t.id)}'>leaderboard</a></p>"
    )
    return _page(f"Rules: {t.title}", body)


async def live_js(request: Request) -> Response:
    return Response(LIVE_JS, media_type="text/javascript", headers={"Cache-Control": "no-store"})


async def index_page(request: Request) -> Response:
    svc = _svc(request)
    e = html.escape
    items = "".join(f"<li><a href='/tournaments/{e(t.id)}'>{e(t.title)}</a> ({e(svc.window(t))})</li>" for t in svc.tournaments.values())  # fmt: skip
    return _page("efflab tournaments", f"<h1>Tournaments</h1><ul>{items}</ul><p><a href='{API}/openapi.json'>API (OpenAPI)</a></p>")  # fmt: skip


# ----------------------------------------------------------------- organiser


async def _organiser(request: Request) -> tuple[Service, Tournament | None, Response | None]:
    svc = _svc(request)
    if not _authorised(request, svc.s.organiser_token):
        return svc, None, error(403, "forbidden", "the organiser's token is required (Authorization: Bearer ...)")  # fmt: skip
    t = svc.tournament(request.path_params["tid"])
    if t is None:
        return svc, None, error(404, "unknown-tournament", "no such tournament on this server")
    return svc, t, None


async def register_key(request: Request) -> Response:
    """
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [participant, public_key], properties: {participant: {type: string}, public_key: {type: string}, replace: {type: boolean}}}
    responses:
      201:
        description: registered (a ledger entry signed by the organiser).
      403:
        description: no organiser token.
    """
    svc, t, bad = await _organiser(request)
    if bad is not None or t is None:
        return bad or error(404, "unknown-tournament", "no such tournament")
    try:
        body = await _json_body(request)
        who = body.get("participant")
        if not isinstance(who, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", who):
            raise UploadRefused(400, "bad-participant", "participant: letters, digits and _.@- (at most 64)")  # fmt: skip
        reg = identity.Registry(t.root(svc.repo) / "participants.json")
        k = await run_in_threadpool(reg.register, who, str(body.get("public_key", ""))[:200], bool(body.get("replace")))  # fmt: skip
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    except BadInput as exc:
        return error(400, "bad-input", str(exc))
    return JSONResponse({"participant": who, "fingerprint": k.fingerprint}, status_code=201)


async def revoke_key(request: Request) -> Response:
    """
    responses:
      200:
        description: revoked (a ledger entry signed by the organiser).
      400:
        description: not registered.
    """
    svc, t, bad = await _organiser(request)
    if bad is not None or t is None:
        return bad or error(404, "unknown-tournament", "no such tournament")
    reg = identity.Registry(t.root(svc.repo) / "participants.json")
    try:
        k = await run_in_threadpool(reg.revoke, request.path_params["participant"])
    except BadInput as exc:
        return error(400, "bad-input", str(exc))
    return JSONResponse({"participant": k.participant, "revoked": k.fingerprint})


async def set_window(request: Request) -> Response:
    """
    requestBody:
      content:
        application/json:
          schema: {type: object, properties: {state: {enum: [open, closed, spec]}}}
    responses:
      200:
        description: the window now (spec = back to the spec's dates).
    """
    svc, t, bad = await _organiser(request)
    if bad is not None or t is None:
        return bad or error(404, "unknown-tournament", "no such tournament")
    try:
        body = await _json_body(request)
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    state = body.get("state")
    if state not in ("open", "closed", "spec"):
        return error(400, "bad-state", "state: open, closed or spec")
    svc.queue.set_window(t.id, None if state == "spec" else state)
    return JSONResponse({"tournament": t.id, "status": svc.window(t)})


async def reverify(request: Request) -> Response:
    """
    responses:
      202:
        description: a re-verification of the stale entries is queued (the local worker runs it).
    """
    svc, t, bad = await _organiser(request)
    if bad is not None or t is None:
        return bad or error(404, "unknown-tournament", "no such tournament")
    jid = new_id()
    try:
        pos = svc.queue.add({"id": jid, "tournament": t.id, "kind": "reverify", "participant": "organiser"}, svc.s.queue_cap + 1)  # fmt: skip
    except QueueFull as exc:
        return error(503, "queue-full", str(exc), {"Retry-After": "30"})
    return JSONResponse({"id": jid, "status": "queued", "position": pos}, status_code=202)


# --------------------------------------------------------------------- workers


def _worker_auth(request: Request) -> Response | None:
    if not _authorised(request, _svc(request).s.worker_token):
        return error(403, "forbidden", "the worker token is required (Authorization: Bearer ...)")
    return None


async def claim(request: Request) -> Response:
    """
    responses:
      200:
        description: a job leased to this worker.
      204:
        description: nothing to do.
    """
    bad = _worker_auth(request)
    if bad:
        return bad
    svc = _svc(request)
    try:
        body = await _json_body(request)
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    owner = str(body.get("worker", ""))[:200]
    machine = body.get("machine") if isinstance(body.get("machine"), dict) else {}
    local = owner.startswith("local:")
    if not owner or (owner.startswith("local:") and not body.get("local")):
        return error(400, "bad-worker", "worker: a name (local workers: local:<pid>)")
    if svc.s.machine_class and machine.get("class") != svc.s.machine_class:
        return Response(status_code=204)  # this tournament's timings need another class
    while True:
        job = svc.queue.claim(owner, svc.s.lease_s, list(svc.tournaments))
        if job is None:
            return Response(status_code=204)
        if job.kind == "reverify" and not local:
            svc.queue.release(job.id, owner, "re-verification runs on the organiser's machine")
            return Response(status_code=204)
        t = svc.tournaments[job.tournament]
        done = await run_in_threadpool(svc.already_recorded, t, job.attempt_id) if job.kind == "submission" else None  # fmt: skip
        if done is None:
            break
        svc.finish(job, done, job.worker)  # its line was written before a crash: not run again
    pub = None
    if job.signature is not None and job.participant is not None:  # for a worker elsewhere
        key = identity.replay(svc.ledger_entries(t)).get(job.participant)
        pub = key.public_b64 if key is not None and key.fingerprint == job.key else None
    return JSONResponse(
        {"job": {
            "id": job.id, "attempt_id": job.attempt_id, "kind": job.kind, "tournament": job.tournament,
            "signature": job.signature, "signed": job.signed, "sub_sha256": job.sub_sha256,
            "archive_sha256": job.archive_sha256, "has_archive": job.has_archive,
            "retries": job.retries, "seqs": job.seqs, "lease_s": svc.s.lease_s, "runs": job.runs,
            "public_key": pub,
        }}
    )  # fmt: skip


def _leased(svc: Service, request: Request) -> tuple[Job | None, Response | None]:
    jid = request.path_params["sid"]
    job = svc.queue.get(jid) if ID.match(jid) else None
    if job is None:
        return None, error(404, "unknown-submission", "no such job")
    owner = request.headers.get("x-efflab-worker", "")
    if job.state != "running" or job.lease_owner != owner:
        return None, error(409, "lease-lost", "this job is not leased to this worker (its lease expired)")  # fmt: skip
    return job, None


async def job_file(request: Request) -> Response:
    """
    responses:
      200:
        description: the uploaded entry or archive of a leased job.
    """
    bad = _worker_auth(request)
    if bad:
        return bad
    svc = _svc(request)
    job, bad = _leased(svc, request)
    if bad or job is None:
        return bad or error(404, "unknown-submission", "no such job")
    what = request.path_params["what"]
    if what not in ("entry", "archive"):
        return error(404, "unknown-file", "entry or archive")
    t = svc.tournaments[job.tournament]
    f = t.root(svc.repo) / "submissions" / job.id / "upload" / ("entry.yaml" if what == "entry" else "archive.tar.gz")  # fmt: skip
    if not f.is_file():
        return error(404, "unknown-file", f"this job has no {what}")
    return FileResponse(f, media_type="application/octet-stream")


async def heartbeat(request: Request) -> Response:
    """
    responses:
      200:
        description: the lease is extended.
      409:
        description: the lease expired; the job went back to the queue.
    """
    bad = _worker_auth(request)
    if bad:
        return bad
    svc = _svc(request)
    owner = request.headers.get("x-efflab-worker", "")
    if not svc.queue.heartbeat(request.path_params["sid"], owner, svc.s.lease_s):
        return error(409, "lease-lost", "this job is not leased to this worker (its lease expired)")  # fmt: skip
    return JSONResponse({"ok": True, "lease_s": svc.s.lease_s})


async def release(request: Request) -> Response:
    """
    responses:
      200:
        description: the job is back in the queue, untouched (the worker could not start it).
    """
    bad = _worker_auth(request)
    if bad:
        return bad
    svc = _svc(request)
    job, bad = _leased(svc, request)
    if bad or job is None:
        return bad or error(404, "unknown-submission", "no such job")
    try:
        body = await _json_body(request)
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    svc.queue.release(job.id, job.lease_owner or "", str(body.get("reason", ""))[:500])
    return JSONResponse({"ok": True})


async def result(request: Request) -> Response:
    """
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [body, worker], properties: {body: {type: object}, records: {type: object}, worker: {type: object}}}
    responses:
      200:
        description: the ledger entry written for this run (or the one written before).
      409:
        description: the lease was lost, or the result does not match the job.
    """
    bad = _worker_auth(request)
    if bad:
        return bad
    svc = _svc(request)
    job, bad = _leased(svc, request)
    if bad or job is None:
        return bad or error(404, "unknown-submission", "no such job")
    try:
        data = await _json_body(request, 16 << 20)
        t = svc.tournaments[job.tournament]
        if job.kind == "reverify":
            svc.queue.record(job.id, None, "accepted", str(data.get("summary", ""))[:500], data.get("worker"), False)  # fmt: skip
            return JSONResponse({"ok": True})
        entry = await run_in_threadpool(_record_result, svc, t, job, data)
    except UploadRefused as exc:
        return error(exc.status, exc.code, exc.message)
    return JSONResponse({"entry": entry})


def _record_result(svc: Service, t: Tournament, job: Job, data: dict[str, Any]) -> dict[str, Any]:
    """Check a worker's result against its job, sign-check it, store its files, append."""
    body, worker = data.get("body"), data.get("worker")
    if not isinstance(body, dict) or not isinstance(worker, dict):
        raise UploadRefused(400, "bad-result", "body and worker are required objects")
    sub = body.get("submission") if isinstance(body.get("submission"), dict) else {}
    want = {"id": job.attempt_id, "sha256": job.sub_sha256, "archive_sha256": job.archive_sha256 if job.has_archive else sub.get("archive_sha256")}  # fmt: skip
    if job.signature is not None and sub.get("key") is not None:  # identity was checked
        want.update(signature=job.signature, signed=job.signed)
    for k, v in want.items():
        if sub.get(k) != v and not (k in ("sha256", "archive_sha256") and body.get("verdict") == attempts.REJECTED and sub.get(k) is None):  # fmt: skip
            raise UploadRefused(
                409, "result-mismatch", f"the result's submission.{k} is not the job's"
            )
    if body.get("tournament") != t.id or body.get("verdict") not in (attempts.ACCEPTED, attempts.REJECTED, attempts.INFRA):  # fmt: skip
        raise UploadRefused(409, "result-mismatch", "the result is for another tournament or has no verdict")  # fmt: skip
    pub, sig = str(worker.get("public_key", "")), str(worker.get("signature", ""))
    if not identity.verify_signature(pub, canonical_json(body).encode(), sig):
        raise UploadRefused(401, "bad-worker-signature", "the result is not signed by the worker's key")  # fmt: skip
    fp = identity.fingerprint(identity.parse_public(pub, "worker"))
    body = {**body, "verification": {**(body.get("verification") or {}), "worker": {
        "name": str(worker.get("name", ""))[:200], "machine": worker.get("machine"),
        "key": fp, "public_key": pub, "signature": sig}}}  # fmt: skip
    root = t.root(svc.repo)
    records = data.get("records") or {}
    if not isinstance(records, dict):
        raise UploadRefused(400, "bad-result", "records must be an object")
    for key, rec in records.items():
        text = json.dumps(rec)
        if not RUN_KEY.match(str(key)) or len(text) > MAX_RECORD_BYTES:
            raise UploadRefused(400, "bad-result", "a run record with a bad key or over 1 MiB")
        f = root / "runs" / f"{key}.json"
        if not f.exists():  # the local worker wrote its own; a remote one's arrive here
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
    up = root / "submissions" / job.id / "upload"
    folder = root / "submissions" / job.attempt_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, src, digest in (("submission.yaml", up / "entry.yaml", sub.get("sha256")), ("script.tar.gz", up / "archive.tar.gz", sub.get("archive_sha256"))):  # fmt: skip
        if sub.get("file" if name == "submission.yaml" else "archive") and not (folder / name).exists() and src.is_file():  # fmt: skip
            from efflab.tournaments.submission import sha256_file

            if sha256_file(src) == digest:
                shutil.copyfile(src, folder / name)
    with svc.append_lock:
        done = svc.already_recorded(t, job.attempt_id)
        entry = done or tournament_ledger(root, t.id).append(body)
    svc.finish(job, entry, body["verification"]["worker"])
    return entry


async def openapi(request: Request) -> Response:
    return JSONResponse(SCHEMAS.get_schema(routes=request.app.routes))


SCHEMAS = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "efflab tournament service", "version": "1"}})  # fmt: skip


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not-found", "no such path")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, "method-not-allowed", "this path does not take that method")


async def crashed(request: Request, exc: Exception) -> Response:
    return error(500, "internal", f"the server failed ({type(exc).__name__}); nothing was recorded for this request")  # fmt: skip


def _warm_imports() -> None:
    import efflab.tournaments.leaderboard  # noqa: F401
    import efflab.tournaments.render  # noqa: F401
    import efflab.tournaments.verification  # noqa: F401


def make_app(repo: Path, settings: Settings) -> Starlette:
    svc = Service(repo, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        svc.sweep()
        # the leaderboard's imports (scipy, the planner) take seconds: not on a request
        warm = asyncio.get_running_loop().run_in_executor(None, _warm_imports)
        if settings.local_worker:
            svc.start_worker()
            svc.supervisor = asyncio.create_task(svc.supervise())
        try:
            yield
        finally:
            warm.cancel()
            if svc.supervisor is not None:
                svc.supervisor.cancel()
            svc.stop_worker()

    routes = [
        Route("/", index_page, include_in_schema=False),
        Route("/static/live.js", live_js, include_in_schema=False),
        Route("/tournaments/{tid}", leaderboard_page),
        Route("/tournaments/{tid}/rules", rules_page),
        Route(f"{API}/health", health),
        Route(f"{API}/openapi.json", openapi, include_in_schema=False),
        Route(f"{API}/tournaments", list_tournaments),
        Route(f"{API}/tournaments/{{tid}}", tournament_rules),
        Route(f"{API}/tournaments/{{tid}}/leaderboard", leaderboard_json),
        Route(f"{API}/tournaments/{{tid}}/head", ledger_head),
        Route(f"{API}/tournaments/{{tid}}/submissions", submit, methods=["POST"]),
        Route(f"{API}/submissions/{{sid}}", status),
        Route(f"{API}/tournaments/{{tid}}/participants", register_key, methods=["POST"]),
        Route(
            f"{API}/tournaments/{{tid}}/participants/{{participant}}",
            revoke_key,
            methods=["DELETE"],
        ),  # fmt: skip
        Route(f"{API}/tournaments/{{tid}}/window", set_window, methods=["POST"]),
        Route(f"{API}/tournaments/{{tid}}/reverify", reverify, methods=["POST"]),
        Route(f"{API}/worker/claim", claim, methods=["POST"]),
        Route(f"{API}/worker/jobs/{{sid}}/files/{{what}}", job_file),
        Route(f"{API}/worker/jobs/{{sid}}/heartbeat", heartbeat, methods=["POST"]),
        Route(f"{API}/worker/jobs/{{sid}}/release", release, methods=["POST"]),
        Route(f"{API}/worker/jobs/{{sid}}/result", result, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed, Exception: crashed},
    )
    app.state.service = svc
    return app


def serve(repo: Path, settings: Settings) -> None:
    """Run the service on uvicorn until SIGINT/SIGTERM (one process: the queue's writer)."""
    import uvicorn

    app = make_app(repo, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_keep_alive=5,
        limit_concurrency=max(64, settings.max_uploads * 8),
        h11_max_incomplete_event_size=16 << 10,
    )
