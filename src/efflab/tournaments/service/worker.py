"""A verifier worker: lease a job from the service, verify it sealed here, report back.

Why a pull loop over HTTP for every worker, the server's own too: the server stays the
only writer of the queue and the ledger, and a worker on another machine is the same
code with `--server URL`. One verification at a time per worker (and per machine:
efflab.tournaments.verification holds a project-wide lock), so timings stay exclusive.

A job's files are the upload (fetched and digest-checked when remote); the run is the
local flow's `attempt` with the job's attempt id and the participant's signature
checked at upload; its ledger body is signed with this worker's Ed25519 key and posted
with the run records it names. While it runs, a heartbeat keeps the lease; a worker
that vanishes stops the heartbeat, the lease expires and the job is queued again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from efflab.core import cpuinfo
from efflab.core.errors import BadInput, RunFailed
from efflab.core.specio import canonical_json
from efflab.tournaments import identity
from efflab.tournaments.private import organiser_dir
from efflab.tournaments.spec import load_tournament

API = "/api/v1"


def worker_key(path: Path | None = None) -> Ed25519PrivateKey:
    """This machine's worker key (made on first use, 0600): `$EFFLAB_ORGANISER_DIR/../worker.pem`."""
    f = path or organiser_dir().parent / "worker.pem"
    if not f.is_file():
        f.parent.mkdir(parents=True, exist_ok=True)
        try:
            identity.generate(f)
        except BadInput:  # made by a concurrent first start
            pass
    return identity.load_private(f)


def describe_machine(machine_class: str | None = None) -> dict[str, Any]:
    """What results carry about where they were measured."""
    cpu = cpuinfo.this_cpu().model
    mem = 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        pass
    cores = os.cpu_count() or 0
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cores": cores,
        "memory_gb": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "class": machine_class or f"{cpu} x{cores}",
    }


class Worker:
    def __init__(
        self,
        repo: Path,
        server: str,
        token: str,
        local: bool = False,
        name: str | None = None,
        machine_class: str | None = None,
        key_file: Path | None = None,
        say: Callable[[str], None] = lambda s: None,
    ):
        self.repo, self.local, self.say = repo, local, say
        self.owner = f"local:{os.getpid()}" if local else f"{name or socket.gethostname()}:{os.getpid()}"  # fmt: skip
        self.http = httpx.Client(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "X-Efflab-Worker": self.owner},
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        self.key = worker_key(key_file)
        self.public = base64.b64encode(self.key.public_key().public_bytes_raw()).decode()
        self.machine = describe_machine(machine_class)

    def run(self, once: bool = False, poll_s: float = 1.0) -> int:
        """Work until stopped (or, with `once`, until the queue is empty); jobs done."""
        done = 0
        while True:
            try:
                r = self.http.post(f"{API}/worker/claim", json={"worker": self.owner, "machine": self.machine, "local": self.local})  # fmt: skip
            except httpx.TransportError as exc:
                self.say(f"server unreachable ({type(exc).__name__}); retrying")
                time.sleep(max(poll_s, 2.0))
                continue
            if r.status_code == 204:
                if once:
                    return done
                time.sleep(poll_s)
                continue
            if r.status_code != 200:
                raise RunFailed(f"the server refused this worker: {r.status_code} {r.text[:300]}")
            self.do(r.json()["job"])
            done += 1

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        for i in range(5):  # the server restarting is not the job's failure
            try:
                return self.http.post(path, json=body)
            except httpx.TransportError:
                time.sleep(1.0 + i)
        return self.http.post(path, json=body)

    def do(self, job: dict[str, Any]) -> None:
        jid = job["id"]
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(jid, float(job["lease_s"]), stop), daemon=True)  # fmt: skip
        beat.start()
        try:
            if job["kind"] == "reverify":
                self._reverify(job)
            else:
                self._verify(job)
        finally:
            stop.set()

    def _heartbeat(self, jid: str, lease_s: float, stop: threading.Event) -> None:
        while not stop.wait(max(1.0, lease_s / 4)):
            try:
                r = self.http.post(f"{API}/worker/jobs/{jid}/heartbeat")
                if r.status_code == 409:
                    self.say(f"{jid}: lease lost; the server queued it again")
                    return
            except httpx.TransportError:
                pass

    def _reverify(self, job: dict[str, Any]) -> None:
        from efflab.tournaments import submit as flow

        vs = flow.reverify(self.repo, job["tournament"])
        summary = f"{len(vs)} stale entries measured again"
        self._post(f"{API}/worker/jobs/{job['id']}/result", {"summary": summary, "worker": {"name": self.owner, "machine": self.machine}})  # fmt: skip

    def _fetch(self, job: dict[str, Any], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for what, name, digest in (("entry", "entry.yaml", job["sub_sha256"]), ("archive", "archive.tar.gz", job["archive_sha256"])):  # fmt: skip
            if what == "archive" and not job["has_archive"]:
                continue
            r = self.http.get(f"{API}/worker/jobs/{job['id']}/files/{what}")
            if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != digest:
                raise RunFailed(f"{job['id']}: the {what} fetched does not match its digest")
            (folder / name).write_bytes(r.content)

    def _verify(self, job: dict[str, Any]) -> None:
        from efflab.tournaments import submit as flow

        t = load_tournament(self.repo, job["tournament"])
        root = t.root(self.repo)
        folder = root / "submissions" / job["id"] / "upload"
        try:
            if not self.local:
                self._fetch(job, folder)
            digest = flow.preflight(self.repo, t)
        except (RunFailed, BadInput) as exc:
            self.say(f"{job['id']}: cannot verify here: {exc}")
            self._post(f"{API}/worker/jobs/{job['id']}/release", {"reason": str(exc)[:400]})
            time.sleep(5.0)
            return

        def record(body: dict[str, Any]) -> dict[str, Any]:
            keys = (body.get("verification") or {}).get("keys") or []
            records = {}
            if not self.local:
                for k in keys:
                    f = root / "runs" / f"{k}.json"
                    if f.is_file():
                        records[k] = json.loads(f.read_text())
            sig = base64.b64encode(self.key.sign(canonical_json(body).encode())).decode()
            worker = {"name": self.owner, "machine": self.machine, "public_key": self.public, "signature": sig}  # fmt: skip
            r = self._post(f"{API}/worker/jobs/{job['id']}/result", {"body": body, "records": records, "worker": worker})  # fmt: skip
            if r.status_code != 200:
                raise RunFailed(f"{job['id']}: the server refused the result: {r.status_code} {r.text[:300]}")  # fmt: skip
            return dict(r.json()["entry"])

        pub = None if self.local else job.get("public_key")  # the local one reads the ledger
        presigned = (job["signature"], job["signed"], pub) if job.get("signature") else None
        archive = folder / "archive.tar.gz" if job["has_archive"] else None
        extra = {"retry_of": job["seqs"][-1]} if job["retries"] and job["seqs"] else None
        self.say(f"{job['id']}: verifying (run {job['runs']})")
        v = flow.attempt(
            self.repo, t, folder / "entry.yaml", archive, digest=digest, sid=job["attempt_id"],
            presigned=presigned, record=record, extra=extra,
        )  # fmt: skip
        self.say(f"{job['id']}: {v.verdict} (ledger entry {v.entry['seq']})")
