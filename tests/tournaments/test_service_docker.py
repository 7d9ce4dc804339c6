"""The submission service for real: a server process, real sealed verification on Docker.

The tiny tournament (keyed, 1 attempt per participant so a burst has losers), a server
on 127.0.0.1 with its local worker; clients are the participant's client code in
threads. Scaled to CI time: 16 concurrent clients over 4 participants (the issue's 50
would be 50 uploads but the same 4 verifications — what costs time here is each sealed
run, ~20-40 s on a loaded 2-core machine, not the uploads; bench/bench_service.py
drives 100 concurrent clients against intake alone).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from service_helpers import Server, env
from tournament_tiny import FIT_PY, add_tiny_tournament, script_archive, submission

from efflab.tournaments.ledger import attempts_only, verify
from efflab.tournaments.service import client

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PEOPLE = ("ana", "bo", "cy", "di")
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">\'"&'

pytestmark = pytest.mark.docker


def cli(repo: Path, organiser: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "efflab", "--repo", str(repo), *args], capture_output=True, text=True, timeout=timeout, env=env(organiser))  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Path:
    from conftest import make_tiny_repo

    root = tmp_path_factory.mktemp("service")
    repo = make_tiny_repo(root / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    add_tiny_tournament(repo, identity={"mode": "keys"}, submissions={"limit": 1, "window_h": 24})
    r = cli(repo, root / "organiser", "env", "build", "base", timeout=1500)
    assert r.returncode == 0, r.stderr
    return repo


@pytest.fixture
def fresh(project: Path, tmp_path: Path):
    """A copy of the project, a server on it, four registered participants."""
    repo = tmp_path / "proj"
    shutil.copytree(project, repo, symlinks=True)
    s = Server(repo, tmp_path / "organiser", "--lease-s", "30").start()
    s.keys = tmp_path / "keys"  # type: ignore[attr-defined]
    s.keys.mkdir()  # type: ignore[attr-defined]
    for who in PEOPLE:
        s.register(who, s.keys / who)  # type: ignore[attr-defined]
    s.subs = tmp_path / "subs"  # type: ignore[attr-defined]
    yield s
    s.stop()


def ledger(s: Server) -> list[dict]:
    v = verify(s.repo / "results/tournaments/tiny/ledger.jsonl")
    assert v.ok, v.reason
    return attempts_only(v.entries)


def proven(s: Server) -> dict:
    r = cli(s.repo, s.organiser_dir, "tournament", "verify-ledger", "tiny", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], out
    return out


def no_containers_left() -> None:
    import docker

    c = docker.from_env(timeout=60)
    for _ in range(30):
        left = [x.name for x in c.containers.list(filters={"label": "efflab.owner"})]
        if not left:
            return
        time.sleep(1)
    raise AssertionError(f"containers left behind: {left}")


def up(s: Server, who: str, name: str, degree: int = 3, **fields) -> client.Answer:
    f = submission(s.subs, name, degree, participant=who, **fields)  # type: ignore[attr-defined]
    return s.upload(f, s.keys / who)  # type: ignore[attr-defined]


def test_concurrent_clients_and_the_live_page(fresh: Server) -> None:
    s = fresh
    from playwright.sync_api import sync_playwright

    answers: dict[str, client.Answer] = {}

    def one(i: int) -> None:
        who = PEOPLE[i % len(PEOPLE)]
        answers[f"{who}-{i}"] = up(s, who, f"e{i}", 3 + 2 * (i % 2))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page()
        page.goto(f"{s.url}/tournaments/tiny")
        first_head = page.locator("meta[name=efflab-head]").get_attribute("content")
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        codes = sorted(a.status for a in answers.values())
        assert len(answers) == 16 and set(codes) <= {202, 429}, codes
        ok = {k: a.body["id"] for k, a in answers.items() if a.status == 202}
        assert sorted(k.split("-")[0] for k in ok) == sorted(PEOPLE)  # one each: the limit
        assert all(a.body["error"]["code"] == "attempt-limit" for a in answers.values() if a.status == 429)  # fmt: skip
        finals = {k: s.wait(sid) for k, sid in ok.items()}
        assert all(f["status"] == "accepted" and f["runs"] == 1 for f in finals.values()), finals
        # the open page reloaded itself when the verdicts landed
        page.wait_for_function(f"document.querySelector('meta[name=efflab-head]').content !== {json.dumps(first_head)}", timeout=30000)  # fmt: skip
        page.wait_for_selector("table")
        assert page.locator("table tr").count() >= 2  # a ranked row under the header
        b.close()
    es = ledger(s)
    assert len(es) == 4 and {e["submission"]["id"] for e in es} == set(ok.values())  # one line each
    out = proven(s)
    board = httpx.get(f"{s.url}/api/v1/tournaments/tiny/leaderboard", timeout=120).json()
    assert {r["seq"] for r in board["entries"]} == {e["seq"] for e in es if e["verdict"] == "accepted"}  # fmt: skip
    assert board["ledger"]["head"] == out["head"]
    for e in es:  # verified by the local worker, which signed its result
        w = e["verification"]["worker"]
        assert w["name"].startswith("local:") and w["machine"]["cores"] >= 1 and w["key"]
    no_containers_left()


def test_hostile_strings_never_execute(fresh: Server) -> None:
    """Script in every text field a participant controls, then the pages in Chromium."""
    from playwright.sync_api import sync_playwright

    s = fresh
    hostile = [
        up(s, "ana", "x1", description=HOSTILE, claimed={HOSTILE: 1.0}),
        up(s, "bo", "x2", inputs={"degree": HOSTILE}),
        up(s, "cy", "x3", entry=HOSTILE),
    ]
    for a in hostile:
        assert a.status == 202, a.body
        assert s.wait(a.body["id"])["status"] == "rejected"
    r = httpx.post(f"{s.url}/api/v1/tournaments/tiny/participants", json={"participant": HOSTILE, "public_key": "x"}, headers=s.organiser())  # fmt: skip
    assert r.status_code == 400
    f = submission(s.subs, "bad-name", 3, participant="di")  # type: ignore[attr-defined]
    f.write_text(f.read_text().replace('"di"', json.dumps(HOSTILE)))
    assert s.upload(f, s.keys / "di").body["error"]["code"] == "bad-entry"  # type: ignore[attr-defined]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for path in ("/tournaments/tiny", "/tournaments/tiny/rules", "/", "/api/v1/tournaments/tiny/leaderboard"):  # fmt: skip
            page.goto(s.url + path)
            page.wait_for_timeout(300)
            assert page.evaluate("window.__xss") is None, path
        assert dialogs == []
        page.goto(f"{s.url}/tournaments/tiny")
        assert "Rejected" in page.content()
        b.close()
    proven(s)


# a fit that takes 3.5 s (the tournament's timeout is 5 s), and the kills below wait for
# its container rather than a fixed time, so they land inside the sealed run on a quiet
# machine too (the plain fit can finish before a fixed wait ends, and nothing is killed)
SLOW_FIT_PY = FIT_PY.replace(
    "def run(ctx):\n", "def run(ctx):\n    __import__('time').sleep(3.5)\n"
)


def up_slow(s: Server, who: str, name: str) -> client.Answer:
    f = submission(s.subs, name, 3, participant=who)  # type: ignore[attr-defined]
    arc = script_archive(s.subs, f"{name}-slow", SLOW_FIT_PY)  # type: ignore[attr-defined]
    return s.upload(f, s.keys / who, arc)  # type: ignore[attr-defined]


def test_kill_9_worker_and_server_mid_verification(fresh: Server) -> None:
    s = fresh
    a = up_slow(s, "ana", "crash1")
    sid = a.body["id"]
    _wait_running(s, sid)
    _wait_container()  # inside the sealed run
    pid = s.health()["local_worker_pid"]
    os.kill(pid, signal.SIGKILL)  # the worker dies mid-verification
    done = s.wait(sid)
    assert done["status"] == "accepted" and done["runs"] == 2, (
        done.get("reason"),
        done,
    )  # run again once
    assert s.health()["local_worker_pid"] not in (None, pid)  # a new worker took over
    # now the server itself, while the next one verifies (its worker dies with it)
    b = up_slow(s, "bo", "crash2")
    sid2 = b.body["id"]
    _wait_running(s, sid2)
    _wait_container()
    s.kill9()
    s.start()
    done2 = s.wait(sid2)
    assert done2["status"] == "accepted" and done2["runs"] == 2, done2
    es = ledger(s)
    assert sorted(e["submission"]["id"] for e in es) == sorted([sid, sid2])  # one line each
    proven(s)
    no_containers_left()


def _wait_container() -> None:
    import docker

    c = docker.from_env(timeout=60)
    for _ in range(600):
        if c.containers.list(filters={"label": "efflab.owner"}):
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise AssertionError("no sealed container started")


def _wait_running(s: Server, sid: str) -> None:
    for _ in range(600):
        if client.status(s.url, sid).body["status"] == "running":
            return
        time.sleep(0.2)
    raise AssertionError("never started")


def test_kill_9_server_mid_upload_loses_nothing_accepted(fresh: Server) -> None:
    import socket

    s = fresh
    kept = up(s, "cy", "before-crash")
    assert kept.status == 202
    f = submission(s.subs, "torn", 3, participant="di")  # type: ignore[attr-defined]
    parts = client.prepare("tiny", f, None, s.keys / "di")  # type: ignore[attr-defined]
    body, total = client._multipart(parts, "BoUnD", lambda a, b: None)
    data = b"".join(body)
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(
        (f"POST /api/v1/tournaments/tiny/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: "
         f"multipart/form-data; boundary=BoUnD\r\nContent-Length: {total}\r\n\r\n").encode() + data[: total // 2]
    )  # fmt: skip
    time.sleep(1)
    incoming = s.repo / "results/tournaments/tiny/incoming"
    assert list(incoming.glob("*")), "the half upload is being received"
    s.kill9()
    sock.close()
    s.start()
    assert not list(incoming.glob("*"))  # swept: the torn upload was never acknowledged
    assert s.wait(kept.body["id"])["status"] == "accepted"  # the acknowledged one was not lost
    again = s.upload(f, s.keys / "di")  # type: ignore[attr-defined]
    assert again.status == 202  # di's attempt was not used up by the torn upload
    assert s.wait(again.body["id"])["status"] == "accepted"
    assert len(ledger(s)) == 2
    proven(s)


def test_remote_worker_verifies_and_signs(project: Path, tmp_path: Path) -> None:
    repo = tmp_path / "server"
    shutil.copytree(project, repo, symlinks=True)
    s = Server(repo, tmp_path / "organiser", "--no-local-worker").start()
    try:
        s.keys = tmp_path / "keys"  # type: ignore[attr-defined]
        s.keys.mkdir()  # type: ignore[attr-defined]
        s.subs = tmp_path / "subs"  # type: ignore[attr-defined]
        s.register("ana", s.keys / "ana")  # type: ignore[attr-defined]
        a = up(s, "ana", "remote1")
        assert a.status == 202
        there = tmp_path / "elsewhere"  # the worker's own working directory and identity
        shutil.copytree(project, there, symlinks=True, ignore=shutil.ignore_patterns("results"))  # fmt: skip
        w = subprocess.run(
            [sys.executable, "-m", "efflab", "--repo", str(there), "tournament", "worker", "--server", s.url,
             "--token", s.tokens()["worker"], "--once", "--name", "remote-1", "--machine-class", "test-class"],
            capture_output=True, text=True, timeout=600, env=env(tmp_path / "worker-config"),
        )  # fmt: skip
        assert w.returncode == 0, w.stderr
        done = s.wait(a.body["id"], 30)
        assert done["status"] == "accepted", done
        (e,) = ledger(s)
        wk = e["verification"]["worker"]
        assert wk["name"].startswith("remote-1:") and wk["machine"]["class"] == "test-class"
        from efflab.tournaments.service.worker import worker_key

        mine = worker_key(tmp_path / "worker-config" / ".." / "worker.pem")
        from efflab.tournaments import identity

        assert wk["key"] == identity.fingerprint(mine.public_key().public_bytes_raw())
        assert not (
            there / "results/tournaments/tiny/ledger.jsonl"
        ).exists()  # the server writes it
        proven(s)  # the run records came along: the server's ledger proves
    finally:
        s.stop()
