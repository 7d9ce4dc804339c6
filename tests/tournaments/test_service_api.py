"""The submission service's intake against a real server process, without Docker.

The server runs with `--no-local-worker`: nothing is verified here, so every answer is
the intake's own — identity, freshness, replay, limits, sizes, the multipart parser,
timeouts, the queue cap, organiser and worker tokens — and what it leaves on disk.
Verification, crashes and concurrency are in test_service_docker.py.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from service_helpers import Server
from tournament_tiny import add_tiny_tournament, submission

from efflab.tournaments import identity
from efflab.tournaments.service import client

API = "/api/v1"
ERROR_KEYS = {"status", "code", "message", "exit_code"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    from conftest import make_tiny_repo

    root = tmp_path_factory.mktemp("service-api")
    repo = make_tiny_repo(root / "proj")
    add_tiny_tournament(repo, identity={"mode": "keys"}, submissions={"limit": 2, "window_h": 24})
    s = Server(repo, root / "organiser", "--no-local-worker", "--idle-timeout-s", "2",
               "--body-timeout-s", "8", "--max-body-mb", "1", "--queue-cap", "6", "--lease-s", "3").start()  # fmt: skip
    keys = root / "keys"
    keys.mkdir()
    for who in ("ana", "bo", "cy", "di", "ed"):
        s.register(who, keys / who)
    s.keys = keys  # type: ignore[attr-defined]
    s.subs = root / "subs"  # type: ignore[attr-defined]
    yield s
    s.stop()


def refused(a: client.Answer, status: int, code: str) -> None:
    assert a.status == status, a.body
    assert set(a.body["error"]) == ERROR_KEYS and a.body["error"]["code"] == code, a.body


def raw(srv: Server, body: bytes, ctype: str = "multipart/form-data; boundary=XyZ", **headers: str) -> client.Answer:  # fmt: skip
    r = httpx.post(f"{srv.url}{API}/tournaments/tiny/submissions", content=body, headers={"Content-Type": ctype, **headers}, timeout=30)  # fmt: skip
    return client._answer(r)


def part(name: str, data: bytes, filename: str | None = None) -> bytes:
    fn = f'; filename="{filename}"' if filename else ""
    return f'--XyZ\r\nContent-Disposition: form-data; name="{name}"{fn}\r\n\r\n'.encode() + data + b"\r\n"  # fmt: skip


def signed_parts(srv: Server, who: str, name: str, signer: str | None = None, when: datetime | None = None, nonce: str | None = None) -> list:  # fmt: skip
    f = submission(srv.subs, name, 3, participant=who)  # type: ignore[attr-defined]
    parts = client.prepare("tiny", f, None, srv.keys / (signer or who))  # type: ignore[attr-defined]
    if when is not None or nonce is not None:  # re-sign with another time or nonce
        fields = dict(p for p in [(k, v.decode()) for k, _, v in parts[1:]])
        stamp = when.isoformat() if when else fields["timestamp"]
        n = nonce or fields["nonce"]
        sha = __import__("hashlib").sha256(parts[0][2]).hexdigest()
        sf = identity.signed_fields("tiny", sha, None, n, stamp)
        sig = identity.sign(identity.load_private(srv.keys / (signer or who)), identity.message_bytes(sf))  # type: ignore[attr-defined]  # fmt: skip
        parts = [parts[0], ("signature", None, sig.encode()), ("nonce", None, n.encode()), ("timestamp", None, stamp.encode())]  # fmt: skip
    return parts


def jobs(srv: Server) -> list[dict]:
    db = sqlite3.connect(srv.repo / "results/tournaments/.service/queue.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM jobs")]
    finally:
        db.close()


def test_honest_upload_replay_and_limit(srv: Server) -> None:
    parts = signed_parts(srv, "ana", "a1")
    a = client.upload(srv.url, "tiny", parts)
    assert a.status == 202 and a.body["position"] >= 1, a.body
    sid = a.body["id"]
    st = client.status(srv.url, sid)
    assert st.body["status"] == "queued" and st.body["position"] == a.body["position"]
    up = srv.repo / "results/tournaments/tiny/submissions" / sid / "upload/entry.yaml"
    assert up.read_bytes() == parts[0][2]  # on disk before the 202
    assert any(j["id"] == sid and j["state"] == "queued" for j in jobs(srv))  # and queued
    refused(client.upload(srv.url, "tiny", parts), 409, "replayed")  # the same bytes again
    assert client.upload(srv.url, "tiny", signed_parts(srv, "ana", "a2")).status == 202
    refused(client.upload(srv.url, "tiny", signed_parts(srv, "ana", "a3")), 429, "attempt-limit")


def test_signatures_refused(srv: Server) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    refused(client.upload(srv.url, "tiny", signed_parts(srv, "bo", "stale", when=old)), 401, "stale-signature")  # fmt: skip
    refused(client.upload(srv.url, "tiny", signed_parts(srv, "bo", "foreign", signer="cy")), 401, "bad-signature")  # fmt: skip
    parts = signed_parts(srv, "bo", "tampered")
    parts[0] = ("entry", "entry.yaml", parts[0][2].replace(b'"degree": 3', b'"degree": 4'))
    refused(client.upload(srv.url, "tiny", parts), 401, "bad-signature")  # other bytes than signed
    f = submission(srv.subs, "mallory-e", 3, participant="mallory")  # type: ignore[attr-defined]
    refused(client.upload(srv.url, "tiny", client.prepare("tiny", f, None, srv.keys / "bo")), 403, "unregistered")  # type: ignore[attr-defined]  # fmt: skip
    refused(client.upload(srv.url, "tiny", client.prepare("tiny", f, None, None)), 401, "unsigned")
    bad = signed_parts(srv, "bo", "garbled")
    bad[1] = ("signature", None, base64.b64encode(b"\0" * 64))
    refused(client.upload(srv.url, "tiny", bad), 401, "bad-signature")
    assert not [j for j in jobs(srv) if j["participant"] in ("bo", "mallory")]  # none queued


def test_sizes_and_malformed_bodies(srv: Server) -> None:
    big = b"x" * (2 << 20)
    refused(raw(srv, part("entry", big, "e.yaml") + b"--XyZ--\r\n"), 413, "too-large")  # content-length  # fmt: skip

    def chunks():  # no Content-Length: the limit holds while reading
        yield part("entry", b"", "e.yaml")[:-2]
        for _ in range(40):
            yield b"y" * 65536

    r = httpx.post(f"{srv.url}{API}/tournaments/tiny/submissions", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=XyZ"}, timeout=30)  # fmt: skip
    refused(client._answer(r), 413, "part-too-large")
    refused(raw(srv, part("entry", b"z" * (70 << 10), "e.yaml") + b"--XyZ--\r\n"), 413, "part-too-large")  # fmt: skip
    refused(raw(srv, part("entry", b"participant: ana\n", "e.yaml")), 400, "truncated")
    refused(raw(srv, b"this is not multipart at all\r\n\r\n--"), 400, "malformed-multipart")
    refused(raw(srv, b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n"), 400, "malformed-multipart")  # fmt: skip
    refused(raw(srv, part("evil", b"1") + b"--XyZ--\r\n"), 400, "unknown-part")
    refused(raw(srv, part("nonce", b"1") + part("nonce", b"2") + b"--XyZ--\r\n"), 400, "repeated-part")  # fmt: skip
    refused(raw(srv, b"{}", "application/json"), 415, "not-multipart")
    refused(raw(srv, part("nonce", b"abc") + b"--XyZ--\r\n"), 400, "missing-entry")
    # nothing half-received stays behind
    assert not list((srv.repo / "results/tournaments/tiny/incoming").glob("*"))


def test_path_tricks_are_inert(srv: Server) -> None:
    parts = signed_parts(srv, "cy", "paths")
    parts[0] = ("entry", "../../../../../tmp/efflab-evil.yaml", parts[0][2])
    a = client.upload(srv.url, "tiny", parts)
    assert a.status == 202, a.body  # the name is ignored: stored as upload/entry.yaml
    assert not Path("/tmp/efflab-evil.yaml").exists()
    assert (srv.repo / "results/tournaments/tiny/submissions" / a.body["id"] / "upload/entry.yaml").is_file()  # fmt: skip
    for path in ("/api/v1/tournaments/..%2F..%2Fetc/submissions", "/api/v1/submissions/..%2F..%2Fetc%2Fpasswd", "/api/v1/submissions/%00", "/tournaments/tiny%00.js", "/api/v1/worker/jobs/x/files/..%2Fentry"):  # fmt: skip
        r = httpx.request("POST" if path.endswith("submissions") else "GET", srv.url + path, timeout=10)  # fmt: skip
        assert r.status_code in (403, 404, 405), (path, r.status_code)
        assert set(r.json()["error"]) == ERROR_KEYS


def test_cli_client_exit_codes(srv: Server) -> None:
    """`submit --server` and `status --server`: the participant's commands, exit 0/1/2."""
    from service_helpers import env

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "efflab", "tournament", *args], capture_output=True, text=True, timeout=120, env=env(srv.organiser_dir), cwd=srv.subs)  # type: ignore[attr-defined]  # fmt: skip

    f = submission(srv.subs, "cli1", 3, participant="ed")  # type: ignore[attr-defined]
    r = run("submit", "tiny", str(f), "--server", srv.url, "--key", str(srv.keys / "ed"), "--no-wait")  # type: ignore[attr-defined]  # fmt: skip
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    assert "queued at position" in r.stderr and "uploading" in r.stderr
    r = run("status", sid, "--server", srv.url)
    assert r.returncode == 0 and r.stdout.startswith("queued"), r.stdout + r.stderr
    j = json.loads(run("status", sid, "--server", srv.url, "--json").stdout)
    assert j["status"] == "queued" and j["position"] >= 1
    r = run("submit", "tiny", str(f), "--server", srv.url, "--no-wait")  # unsigned
    assert r.returncode == 1 and "401 unsigned" in r.stderr and "Traceback" not in r.stderr
    r = run("submit", "tiny", str(srv.subs / "nope.yaml"), "--server", srv.url, "--key", str(srv.keys / "ed"))  # type: ignore[attr-defined]  # fmt: skip
    assert r.returncode == 2 and "nope.yaml" in r.stderr and "Traceback" not in r.stderr
    r = run("status", "20990101T000000-00000000", "--server", srv.url)
    assert r.returncode == 2 and "unknown-submission" in r.stderr
    r = run("submit", "tiny", str(f), "--server", "http://127.0.0.1:9", "--key", str(srv.keys / "ed"))  # type: ignore[attr-defined]  # fmt: skip
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_slow_client_is_cut_off(srv: Server) -> None:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        body = part("entry", b"participant: ana\n", "e.yaml") + b"--XyZ--\r\n"
        head = (f"POST {API}/tournaments/tiny/submissions HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        s.sendall(head.encode() + body[:20])
        t0 = time.monotonic()
        reply = s.recv(4096).decode()
        assert " 408 " in reply.splitlines()[0] and time.monotonic() - t0 < 10, reply
        while '"too-slow"' not in reply and (more := s.recv(4096)):  # headers, then the body
            reply += more.decode()
        assert '"too-slow"' in reply
    finally:
        s.close()


def test_organiser_and_worker_tokens(srv: Server) -> None:
    u = f"{srv.url}{API}/tournaments/tiny"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {srv.tokens()['worker']}"}):  # fmt: skip
        r = httpx.post(f"{u}/participants", json={"participant": "eve", "public_key": "x"}, headers=headers)  # fmt: skip
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = httpx.post(f"{srv.url}{API}/worker/claim", json={"worker": "w"}, headers=srv.organiser())
    assert r.status_code == 403
    r = httpx.post(f"{u}/window", json={"state": "closed"}, headers=srv.organiser())
    assert r.json()["status"] == "closed"
    refused(client.upload(srv.url, "tiny", signed_parts(srv, "di", "closed")), 409, "window-closed")
    assert httpx.post(f"{u}/window", json={"state": "spec"}, headers=srv.organiser()).json()["status"] == "open"  # fmt: skip
    r = httpx.delete(f"{u}/participants/di", headers=srv.organiser())
    assert r.status_code == 200
    refused(client.upload(srv.url, "tiny", signed_parts(srv, "di", "revoked")), 403, "unregistered")


def test_queue_cap_and_api_description(srv: Server) -> None:
    answers = []
    for i in range(8):  # flood past the cap (6 waiting; nothing verifies here)
        who = ("cy", "bo")[i % 2]
        answers.append(client.upload(srv.url, "tiny", signed_parts(srv, who, f"flood{i}")))
    full = [a for a in answers if a.status == 503]
    assert full and all(a.body["error"]["code"] == "queue-full" for a in full)
    f = submission(srv.subs, "flood-raw", 3, participant="bo")  # type: ignore[attr-defined]
    parts = client.prepare("tiny", f, None, srv.keys / "bo")  # type: ignore[attr-defined]
    body, _ = client._multipart(parts, "QqQ", lambda a, b: None)
    r = httpx.post(f"{srv.url}{API}/tournaments/tiny/submissions", content=b"".join(body), headers={"Content-Type": "multipart/form-data; boundary=QqQ"})  # fmt: skip
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    r = httpx.post(f"{srv.url}{API}/tournaments/tiny/submissions", content=b"", headers={"Content-Type": "multipart/form-data; boundary=XyZ"})  # fmt: skip
    assert r.status_code in (400, 503)
    waiting = [j for j in jobs(srv) if j["state"] == "queued"]
    assert len(waiting) <= 6
    api = httpx.get(f"{srv.url}{API}/openapi.json").json()
    assert f"{API}/tournaments/{{tid}}/submissions" in api["paths"]
    assert "202" in api["paths"][f"{API}/tournaments/{{tid}}/submissions"]["post"]["responses"]
    board = httpx.get(f"{srv.url}{API}/tournaments/tiny/leaderboard", timeout=120).json()
    assert board["entries"] == [] and board["ledger"]["organiser_key"]
    assert json.loads(httpx.get(f"{srv.url}{API}/tournaments/tiny").text)["attempts"]["limit"] == 2


def test_worker_leases_expire_and_results_are_checked(srv: Server) -> None:
    """A worker that claims a job and vanishes (no heartbeat) loses it after the lease;
    a result that does not match its job, or is not signed by the worker, is refused."""
    w = {"Authorization": f"Bearer {srv.tokens()['worker']}"}
    gone = httpx.post(f"{srv.url}{API}/worker/claim", json={"worker": "gone:1", "machine": {}}, headers={**w, "X-Efflab-Worker": "gone:1"})  # fmt: skip
    assert gone.status_code == 200, gone.text
    job = gone.json()["job"]
    assert job["runs"] == 1 and job["public_key"]  # the registered key, for a worker elsewhere
    f = httpx.get(f"{srv.url}{API}/worker/jobs/{job['id']}/files/entry", headers={**w, "X-Efflab-Worker": "gone:1"})  # fmt: skip
    assert __import__("hashlib").sha256(f.content).hexdigest() == job["sub_sha256"]
    assert client.status(srv.url, job["id"]).body["status"] == "running"
    time.sleep(3.5)  # no heartbeat: the lease runs out
    h = {**w, "X-Efflab-Worker": "next:2"}
    again = httpx.post(f"{srv.url}{API}/worker/claim", json={"worker": "next:2", "machine": {}}, headers=h).json()["job"]  # fmt: skip
    assert again["id"] == job["id"] and again["runs"] == 2  # back in the queue, leased again
    late = httpx.post(f"{srv.url}{API}/worker/jobs/{job['id']}/heartbeat", headers={**w, "X-Efflab-Worker": "gone:1"})  # fmt: skip
    assert late.status_code == 409 and late.json()["error"]["code"] == "lease-lost"
    assert httpx.post(f"{srv.url}{API}/worker/jobs/{job['id']}/heartbeat", headers=h).status_code == 200  # fmt: skip
    key = identity.load_private(srv.keys / "cy")  # type: ignore[attr-defined]
    pub = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    body = {"tournament": "tiny", "verdict": "accepted", "submission": {"id": job["attempt_id"], "sha256": "0" * 64}}  # fmt: skip
    from efflab.core.specio import canonical_json

    sig = identity.sign(key, canonical_json(body).encode())
    r = httpx.post(f"{srv.url}{API}/worker/jobs/{job['id']}/result", json={"body": body, "worker": {"public_key": pub, "signature": sig}}, headers=h)  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "result-mismatch"
    body["submission"].update(sha256=job["sub_sha256"], signature=job["signature"], signed=job["signed"], key="x")  # fmt: skip
    r = httpx.post(f"{srv.url}{API}/worker/jobs/{job['id']}/result", json={"body": body, "worker": {"public_key": pub, "signature": sig}}, headers=h)  # fmt: skip
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad-worker-signature"
    r = httpx.post(f"{srv.url}{API}/worker/jobs/{job['id']}/release", json={"reason": "test"}, headers=h)  # fmt: skip
    assert r.status_code == 200 and client.status(srv.url, job["id"]).body["status"] == "queued"
    assert not [e for e in (srv.repo / "results/tournaments/tiny/ledger.jsonl").read_text().splitlines() if '"verdict"' in e]  # nothing recorded  # fmt: skip


def test_infrastructure_errors_are_retried_then_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A worker reporting `infrastructure-error` (the verifier broke, not the entry): the
    line is written, the job runs again under a new attempt id, up to --infra-retries
    (2), then its status is final with the retry count; one ledger line per attempt."""
    from conftest import make_tiny_repo

    from efflab.core.specio import canonical_json
    from efflab.tournaments.proof import prove
    from efflab.tournaments.spec import load_tournament

    repo = make_tiny_repo(tmp_path / "proj")
    add_tiny_tournament(repo, identity={"mode": "keys"})
    srv = Server(repo, tmp_path / "organiser", "--no-local-worker").start()
    try:
        srv.keys, srv.subs = tmp_path / "keys", tmp_path / "subs"  # type: ignore[attr-defined]
        srv.keys.mkdir()  # type: ignore[attr-defined]
        srv.register("fi", srv.keys / "fi")  # type: ignore[attr-defined]
        key = identity.load_private(srv.keys / "fi")  # type: ignore[attr-defined]
        pub = base64.b64encode(key.public_key().public_bytes_raw()).decode()
        w = {"Authorization": f"Bearer {srv.tokens()['worker']}", "X-Efflab-Worker": "flaky:9"}
        a = client.upload(srv.url, "tiny", signed_parts(srv, "fi", "flaky"))
        assert a.status == 202, a.body
        sid = a.body["id"]
        seen = []
        for n in range(3):
            r = httpx.post(f"{srv.url}{API}/worker/claim", json={"worker": "flaky:9"}, headers=w)
            assert r.status_code == 200, r.text
            job = r.json()["job"]
            assert job["id"] == sid and job["retries"] == n
            assert job["attempt_id"] == (sid if n == 0 else f"{sid}-r{n}")
            body = {
                "tournament": "tiny", "verdict": "infrastructure-error", "stage": "run",
                "reason": "verification could not run (the engine went away)", "metrics": {},
                "submission": {"id": job["attempt_id"], "participant": "fi", "entry": "flaky",
                               "key": identity.fingerprint(key.public_key().public_bytes_raw()),
                               "signature": job["signature"], "signed": job["signed"],
                               "sha256": job["sub_sha256"], "archive_sha256": None},
                **({"retry_of": job["seqs"][-1]} if job["seqs"] else {}),
            }  # fmt: skip
            sig = identity.sign(key, canonical_json(body).encode())
            r = httpx.post(f"{srv.url}{API}/worker/jobs/{sid}/result", json={"body": body, "worker": {"name": "flaky:9", "public_key": pub, "signature": sig}}, headers=w)  # fmt: skip
            assert r.status_code == 200, r.text
            seen.append(r.json()["entry"]["seq"])
            st = client.status(srv.url, sid).body
            assert st["retries"] == min(n + 1, 2) and st["ledger_seqs"] == seen
            assert st["status"] == ("infrastructure-error" if n == 2 else "queued"), st
        assert st["exit_code"] == 1 and len(st["ledger"]) == 3
        assert [e["submission"]["id"] for e in st["ledger"]] == [sid, f"{sid}-r1", f"{sid}-r2"]
        assert httpx.post(f"{srv.url}{API}/worker/claim", json={"worker": "flaky:9"}, headers=w).status_code == 204  # fmt: skip
        monkeypatch.setenv("EFFLAB_ORGANISER_DIR", str(tmp_path / "organiser"))  # the server's
        p = prove(repo, load_tournament(repo, "tiny"))
        assert p.ok, p.to_json()["problems"]
    finally:
        srv.stop()
