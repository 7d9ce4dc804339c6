"""Tournaments for real: hostile submissions against sealed verification on real Docker.

A tiny tournament (tests/tournament_tiny.py) in a throwaway project, the small `base`
env, the real CLI. Each hostile submission must be contained or rejected, must leave
the leaderboard's existing entries, the ledger's history and the project's files as
they were, and must leave no container (or process) behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from tournament_tiny import add_tiny_tournament, script_archive, submission

from efflab.tournaments.ledger import verify

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker


def client():
    import docker

    return docker.from_env(timeout=60)


def cli(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        capture_output=True, text=True, timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "EFFLAB_SCRIPTS_PATH"},
    )  # fmt: skip


def submit(repo: Path, file: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    r = cli(repo, "tournament", "submit", "tiny", str(file), "--json", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r, json.loads(r.stdout)


def board(repo: Path) -> dict:
    r = cli(repo, "tournament", "leaderboard", "tiny", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ranked(repo: Path) -> list[dict]:
    """The leaderboard's rows, computed in-process (fast; the CLI is tested elsewhere)."""
    from efflab.tournaments.leaderboard import build
    from efflab.tournaments.spec import load_tournament

    return build(repo, load_tournament(repo, "tiny"))["entries"]


@pytest.fixture(scope="session")
def arena_template(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Path:
    """A project with the tiny tournament, base built and two accepted entries."""
    from conftest import make_tiny_repo

    repo = make_tiny_repo(tmp_path_factory.mktemp("tournament") / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    add_tiny_tournament(repo)
    r = cli(repo, "env", "build", "base", timeout=1500)
    assert r.returncode == 0, r.stderr
    subs = repo.parent / "subs"
    for name, degree, who in (("deg3", 3, "ana"), ("deg5", 5, "bo")):
        r, entry = submit(repo, submission(subs, name, degree, participant=who))
        assert r.returncode == 0 and entry["verdict"] == "accepted", r.stderr
    return repo


@pytest.fixture
def arena(arena_template: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    shutil.copytree(arena_template, repo, symlinks=True)
    return repo


def project_files(repo: Path) -> dict[str, bytes]:
    """Everything a submission must not change: code, specs, envs, past submissions."""
    out = {}
    for sub in ("scripts", "workflows", "envs", "results/tournaments/tiny/submissions"):
        for f in sorted((repo / sub).rglob("*")):
            if f.is_file() and "wheels" not in f.parts:
                out[str(f.relative_to(repo))] = f.read_bytes()
    return out


class Snapshot:
    """The arena before a hostile submission, to compare with afterwards."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.ledger = (repo / "results/tournaments/tiny/ledger.jsonl").read_bytes()
        self.rows = ranked(repo)
        self.files = project_files(repo)

    def assert_untouched(self, entry: dict, accepted_ok: bool = False) -> None:
        repo = self.repo
        ledger = (repo / "results/tournaments/tiny/ledger.jsonl").read_bytes()
        assert ledger.startswith(self.ledger)  # history intact, one line appended
        assert len(ledger.splitlines()) == len(self.ledger.splitlines()) + 1
        v = verify(repo / "results/tournaments/tiny/ledger.jsonl")
        assert v.ok, v.reason
        rows = ranked(repo)
        theirs = [r for r in rows if r["submission"] != entry["submission"]["id"]]
        key = lambda r: (r["seq"], r["participant"], r["entry"], r["metrics"])  # noqa: E731
        assert sorted(map(key, theirs)) == sorted(map(key, self.rows))
        if not accepted_ok:
            assert rows == self.rows
        now = project_files(repo)
        new = set(now) - set(self.files)
        assert all(f.startswith(f"results/tournaments/tiny/submissions/{entry['submission']['id']}") for f in new), new  # fmt: skip
        assert {f: b for f, b in now.items() if f in self.files} == self.files
        assert not list(repo.glob("PWNED*")) and not Path("/etc/pwned").exists()
        sid = entry["submission"]["id"]
        assert not client().containers.list(
            all=True, filters={"label": f"efflab.run={sid}"}, ignore_removed=True
        )
        assert not leftover_processes(repo)


def leftover_processes(repo: Path) -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "--inside" in cmd and str(repo) in cmd:
            found.append(cmd)
    return found


# ---------------------------------------------------------------- hostile scripts

NET_PY = """\
import socket


def run(ctx):
    errors = []
    for host, port in {targets!r}:
        try:
            socket.create_connection((host, port), timeout=3).close()
            return {{"files": {{}}, "values": {{"connected": host}}}}
        except OSError as exc:
            errors.append(f"{{host}}:{{port}}: {{exc}}")
    raise OSError("no network: " + "; ".join(errors))
"""
FORK_PY = """\
import os, time


def run(ctx):
    while True:  # every child runs this loop too
        try:
            os.fork()
        except OSError:
            time.sleep(0.001)
"""
MEM_PY = """\
def run(ctx):
    hog = []
    while True:
        hog.append(b"\\x01" * (16 << 20))  # written pages: really resident
"""
LOOP_PY = """\
def run(ctx):
    while True:
        pass
"""
WRITER_PY = """\
import json
import os
from pathlib import Path

import numpy as np


def run(ctx):
    repo = Path({repo!r})
    targets = [
        repo / "results/tournaments/tiny/ledger.jsonl",
        repo / "scripts/tiny-score/run.py",
        repo / "workflows/tournaments/tiny.yaml",
        repo / "PWNED",
        repo / "artifacts/PWNED",
        Path({other!r}),
        ctx.script_dir / "run.py",
        Path("/etc/pwned"),
        Path("/usr/lib/pwned"),
        Path("/proc/1/root/etc/pwned"),
    ]
    done = {{
        "read ledger": (repo / "results/tournaments/tiny/ledger.jsonl").exists(),
        "read other": Path({other!r}).exists(),
        "list /work": os.path.isdir("/work"),
    }}
    for p in targets:
        try:
            with open(p, "a") as f:
                f.write("pwned\\n")
            done[str(p)] = "written"
        except OSError as exc:
            done[str(p)] = exc.strerror
    x = np.linspace(0, np.pi, 200)
    c = np.polyfit(x, np.sin(x), ctx.inputs["degree"])
    (ctx.out_dir / "coeffs.json").write_text(json.dumps(c.tolist()))
    return {{"files": {{"coeffs": "coeffs.json"}}, "values": done}}
"""


class Server:
    """A TCP listener on every host address that counts the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge (where a container would reach it)."""
    import ipaddress

    cfg = client().networks.get("bridge").attrs["IPAM"]["Config"][0]
    return cfg.get("Gateway") or str(ipaddress.ip_network(cfg["Subnet"])[1])


def test_network_is_unreachable(arena: Path, tmp_path: Path) -> None:
    server = Server()
    targets = [(bridge_gateway(), server.port), ("1.1.1.1", 80)]
    probe = f"import socket; socket.create_connection({targets[0]!r}, timeout=5).close()"
    image = next(i for i in client().images.list("efflab-env/base"))
    client().containers.run(image.id, ["python3", "-c", probe], network_mode="bridge", remove=True)
    assert server.accepted == 1  # control: an unsealed container reaches the listener
    snap = Snapshot(arena)
    arc = script_archive(tmp_path, "net", NET_PY.format(targets=targets))
    r, entry = submit(arena, submission(tmp_path, "net", 4), "--archive", str(arc))
    assert r.returncode == 1 and entry["verdict"] == "rejected" and entry["stage"] == "run"
    assert "no network" in entry["reason"] and "unreachable" in entry["reason"].lower()
    assert server.accepted == 1  # nothing from the sealed run
    snap.assert_untouched(entry)


@pytest.mark.parametrize(
    ("name", "code", "expect"),
    [("fork-bomb", FORK_PY, "timeout"), ("memory-bomb", MEM_PY, "out of memory"),
     ("infinite-loop", LOOP_PY, "timeout")],
    ids=["fork-bomb", "memory-bomb", "infinite-loop"],
)  # fmt: skip
def test_resource_bombs_are_contained(arena: Path, tmp_path: Path, name, code, expect) -> None:
    snap = Snapshot(arena)
    arc = script_archive(tmp_path, name, code)
    t0 = time.monotonic()
    r, entry = submit(arena, submission(tmp_path, name, 4), "--archive", str(arc))
    wall = time.monotonic() - t0
    assert r.returncode == 1 and entry["stage"] == "run", r.stderr
    assert expect in entry["reason"] and "tiny-fit" in entry["reason"], entry["reason"]
    assert wall < 150, wall  # the 5 s limit held: an uncontained bomb runs to the test timeout
    assert "rejected (run): tiny-fit" in r.stderr
    snap.assert_untouched(entry)


def test_writes_outside_the_output_folder_are_contained(arena: Path, tmp_path: Path) -> None:
    other = next((arena / "results/tournaments/tiny/submissions").glob("*/submission.yaml"))
    snap = Snapshot(arena)
    code = WRITER_PY.format(repo=str(arena), other=str(other))
    arc = script_archive(tmp_path, "writer", code)
    r, entry = submit(arena, submission(tmp_path, "writer", 4), "--archive", str(arc))
    assert r.returncode == 0 and entry["verdict"] == "accepted", r.stderr  # contained
    (fit,) = [
        json.loads(f.read_text())
        for f in arena.glob("artifacts/tiny-fit/*/outputs.json")
        if "list /work" in json.loads(f.read_text())["values"]
    ]
    seen = fit["values"]
    assert seen["read ledger"] is False and seen["read other"] is False  # not even visible
    assert seen["/etc/pwned"] == seen["/usr/lib/pwned"] == "Read-only file system"
    snap.assert_untouched(entry, accepted_ok=True)


def _tar(path: Path, evil: tarfile.TarInfo, data: bytes | None = None) -> Path:
    import io

    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("run.py")
        body = b"def run(ctx):\n    return {}\n"
        ok.size = len(body)
        tar.addfile(ok, io.BytesIO(body))
        if data is not None:
            evil.size = len(data)
        tar.addfile(evil, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    return m


@pytest.mark.parametrize(
    ("kind", "evil", "data", "reason"),
    [
        ("dotdot", _member("../../PWNED-dotdot"), b"x", "'..'"),
        ("absolute", _member("/tmp/PWNED-absolute"), b"x", "absolute path"),
        ("symlink", _member("escape", tarfile.SYMTYPE, "../../../../.."), None, "symlink"),
    ],
    ids=["dotdot", "absolute", "symlink"],
)
def test_unsafe_archives_are_rejected(
    arena: Path, tmp_path: Path, kind, evil, data, reason
) -> None:
    snap = Snapshot(arena)
    fits = set(arena.glob("artifacts/tiny-fit/*"))
    arc = _tar(tmp_path / f"{kind}.tar.gz", evil, data)
    r, entry = submit(arena, submission(tmp_path, kind, 4), "--archive", str(arc))
    assert r.returncode == 1 and entry["stage"] == "archive", r.stderr
    assert reason in entry["reason"]
    assert entry["submission"]["archive_sha256"]  # what was refused is on record
    stored = arena / "results/tournaments/tiny" / entry["submission"]["archive"]
    assert stored.exists() and not (stored.parent / "scripts").exists()
    assert not Path("/tmp/PWNED-absolute").exists()
    assert not list(arena.parent.rglob("PWNED*")) and not list(arena.rglob("escape"))
    assert set(arena.glob("artifacts/tiny-fit/*")) == fits  # nothing was planned or run
    snap.assert_untouched(entry)


def test_claims_far_better_than_measured_are_flagged(arena: Path, tmp_path: Path) -> None:
    snap = Snapshot(arena)
    f = submission(
        tmp_path, "bold", 5, participant="cara", claimed={"error": 1e-9, "eval_us": 1e-4}
    )
    r, entry = submit(arena, f)
    assert r.returncode == 0 and entry["verdict"] == "accepted"
    assert len(entry["flags"]) == 2 and all("better than measured" in x for x in entry["flags"])
    (row,) = [x for x in board(arena)["entries"] if x["participant"] == "cara"]
    assert row["metrics"] == entry["metrics"]  # ranked on the measurement ...
    assert row["metrics"]["error"] > 1e-4 and row["metrics"]["eval_us"] > 1e-3  # ... not the claim
    assert row["flags"] == entry["flags"]
    md = cli(arena, "tournament", "leaderboard", "tiny").stdout
    assert "⚑ claimed error=1e-09" in md
    html = cli(arena, "tournament", "leaderboard", "tiny", "--format", "html").stdout
    assert "class='flag'" in html and "data:image/png;base64," in html
    assert (arena / "results/tournaments/tiny/leaderboard/front.png").stat().st_size > 5000
    snap.assert_untouched(entry, accepted_ok=True)


def test_hand_edited_ledger_is_detected(arena: Path, tmp_path: Path) -> None:
    ledger = arena / "results/tournaments/tiny/ledger.jsonl"
    original = ledger.read_bytes()
    lines = original.decode().splitlines(keepends=True)
    e = json.loads(lines[2])  # line 1: the organiser's genesis, 2: ana's, 3: bo's
    e["metrics"]["eval_us"] /= 10  # a "small" improvement to bo's entry
    lines[2] = json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
    ledger.write_text("".join(lines))
    r = cli(arena, "tournament", "verify-ledger", "tiny")
    assert r.returncode == 1 and "entry 2 (line 3)" in r.stderr and "edited" in r.stderr
    j = json.loads(cli(arena, "tournament", "verify-ledger", "tiny", "--json").stdout)
    assert j["ok"] is False and j["first_bad_line"] == 3
    r = cli(arena, "tournament", "leaderboard", "tiny")
    assert r.returncode == 1 and "does not verify" in r.stderr
    edited = ledger.read_bytes()
    r = cli(arena, "tournament", "submit", "tiny", str(submission(tmp_path, "late", 3)))
    assert r.returncode == 1 and "nothing recorded" in r.stderr
    assert ledger.read_bytes() == edited
    ledger.write_bytes(original)
    assert cli(arena, "tournament", "verify-ledger", "tiny").returncode == 0
    stored = arena / "results/tournaments/tiny" / e["submission"]["file"]
    stored.write_text(stored.read_text().replace("deg5", "deg6"))  # the stored file, too
    r = cli(arena, "tournament", "verify-ledger", "tiny")
    assert r.returncode == 1 and "differs from its recorded sha256" in r.stderr


def test_eight_submissions_at_once(arena: Path, tmp_path: Path) -> None:
    before = (arena / "results/tournaments/tiny/ledger.jsonl").read_bytes()
    n0 = len(before.splitlines())
    # four to rank, one over the error bound, three refused by the schema (degree 1..9)
    plan = [(f"p{i}", d) for i, d in enumerate([3, 5, 3, 5, 1, 42, 0, 99])]
    want = {"p0": 0, "p1": 0, "p2": 0, "p3": 0, "p4": 1, "p5": 1, "p6": 1, "p7": 1}
    procs = {
        who: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "efflab",
                "--repo",
                str(arena),
                "tournament",
                "submit",
                "tiny",
                str(submission(tmp_path, f"e-{who}", deg, participant=who)),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for who, deg in plan
    }
    results = {}
    for who, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == want[who], f"{who}: {err}"
        results[who] = json.loads(out)
    ledger = arena / "results/tournaments/tiny/ledger.jsonl"
    assert ledger.read_bytes().startswith(before)
    v = json.loads(cli(arena, "tournament", "verify-ledger", "tiny", "--json").stdout)
    assert v["ok"] and v["entries"] == n0 + 8, v
    entries = [json.loads(x) for x in ledger.read_text().splitlines()][n0:]
    assert sorted(e["seq"] for e in entries) == list(range(n0, n0 + 8))
    assert {e["submission"]["participant"] for e in entries} == set(want)
    for who, res in results.items():  # what each submitter was told is what was recorded
        (mine,) = [e for e in entries if e["submission"]["participant"] == who]
        assert {k: v for k, v in res.items() if k != "position"} == mine
    assert {e["stage"] for e in entries if e["verdict"] == "rejected"} == {"constraint", "schema"}
    rows = board(arena)["entries"]
    assert len(rows) == 2 + 4 and [r["position"] for r in rows] == list(range(1, 7))
