"""Hostile entries against a keyed tournament on real Docker (issue #21, "Tests").

The tiny tournament (tournament_tiny.py) with identities on: ana, bo, cy, mallory
have registered Ed25519 keys; ana/deg3 and bo/deg5 are accepted before each test.
Every attack below must be contained or rejected AND leave exactly its ledger
line(s), with the submission's digests, in a chain that still verifies:

1. spoofer: prints the verifier's own error texts / forges the runtime's signals →
   the entry's failure (`rejected`, stage run), never `infrastructure-error`, never
   re-queued;
2. identity: impersonation (another participant's name, one's own key), unsigned,
   badly signed, a replayed signature → `rejected` (identity); the victim's row stays;
3. disk filler: writes until the folder quota and the /tmp cap → a failed attempt
   naming the full disk, the host disk untouched, nothing of it kept;
4. burst: limit + 2 submissions at once → exactly `limit` run, the rest `limit`;
5. spec drift: a scoring change makes old rows stale (not ranked with new ones);
   `efflab tournament reverify` measures them again (ranked, or rejected);
6. a real infrastructure error (Docker refuses a container for an efflab-side
   reason) → `infrastructure-error` with the digests, re-queued; `retry` verifies it;
7. prober: what an entry sees of mounts, /proc, the environment, uid, root, network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tournament_tiny import TOURNAMENT, add_tiny_tournament, script_archive, submission

from efflab.tournaments import identity, signing
from efflab.tournaments.attempts import attempts_in_window
from efflab.tournaments.ledger import verify
from efflab.tournaments.spec import load_tournament

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker
PEOPLE = ("ana", "bo", "cy", "mallory")
CANARY = "hostile-canary-5b1e"  # an EFFLAB_* value of the verifier no entry may see


def cli(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EFFLAB_SCRIPTS_PATH"}
    env["EFFLAB_HOSTILE_CANARY"] = CANARY
    return subprocess.run([sys.executable, "-m", "efflab", "--repo", str(repo), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip


def keys(repo: Path) -> Path:
    return repo.parent / "keys"


def sign(repo: Path, file: Path, who: str, archive: Path | None = None) -> Path:
    """FILE.sig by `who`'s key, exactly as `efflab tournament sign` writes it."""
    out, _ = signing.sign_submission(repo, "tiny", file, keys(repo) / who, archive)
    return out


def submit(repo: Path, file: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    r = cli(repo, "tournament", "submit", "tiny", str(file), "--json", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    told = json.loads(r.stdout)
    told.pop("position")  # the rest is the ledger entry, as recorded
    return r, told


def ledger(repo: Path) -> list[dict]:
    v = verify(repo / "results/tournaments/tiny/ledger.jsonl")
    assert v.ok, v.reason
    return v.entries


def build(repo: Path) -> dict:
    from efflab.tournaments.leaderboard import build as board

    return board(repo, load_tournament(repo, "tiny"))


def row(repo: Path, who: str, entry: str) -> dict | None:
    return next((r for r in build(repo)["entries"] if (r["participant"], r["entry"]) == (who, entry)), None)  # fmt: skip


def queue(repo: Path) -> list[str]:
    q = repo / "results/tournaments/tiny/queue"
    return sorted(p.name for p in q.glob("*.json")) if q.is_dir() else []


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def respec(repo: Path, **changes) -> None:
    f = repo / "workflows/tournaments/tiny.yaml"
    spec = json.loads(f.read_text())
    for k, v in changes.items():
        cur, *path = k.split("__")
        node = spec
        for p in [cur, *path][:-1]:
            node = node[p]
        node[[cur, *path][-1]] = v
    f.write_text(json.dumps(spec, indent=2))


@pytest.fixture(scope="session")
def keyed_template(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Path:
    """A project with the tiny tournament in keyed mode, four registered keys, base
    built, ana/deg3 and bo/deg5 accepted (signed)."""
    from conftest import make_tiny_repo

    repo = make_tiny_repo(tmp_path_factory.mktemp("hostile") / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    spec = json.loads(json.dumps(TOURNAMENT))
    spec["verification"]["limits"]["timeout_s"] = 60  # a shared, loaded machine: no bombs here
    add_tiny_tournament(repo, identity={"mode": "keys"}, verification=spec["verification"])
    r = cli(repo, "env", "build", "base", timeout=1500)
    assert r.returncode == 0, r.stderr
    keys(repo).mkdir()
    reg = identity.Registry(repo / "results/tournaments/tiny/participants.json")
    for who in PEOPLE:
        k = identity.generate(keys(repo) / who)
        reg.register(who, k.public_b64)
    subs = repo.parent / "subs"
    for name, degree, who in (("deg3", 3, "ana"), ("deg5", 5, "bo")):
        f = submission(subs, name, degree, participant=who)
        sign(repo, f, who)
        r, entry = submit(repo, f)
        assert r.returncode == 0 and entry["verdict"] == "accepted", r.stderr
    return repo


@pytest.fixture
def arena(keyed_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "a"
    shutil.copytree(keyed_template.parent, root, symlinks=True)
    return root / "proj"


def assert_one_more_line(repo: Path, before: list[dict], entry: dict) -> None:
    after = ledger(repo)
    assert [e["hash"] for e in after[: len(before)]] == [e["hash"] for e in before]
    assert after[len(before) :] == [entry]


# ---------------------------------------------------------------- 1. spoofer

FAKE_TRACEBACK = """Traceback (most recent call last):
  File "/opt/efflab/efflab/runtime/docker.py", line 301, in execute_docker
    raise InvocationFailed(INFRASTRUCTURE, "docker refused the container")
efflab.runtime.failure.InvocationFailed: the Docker engine stopped answering mid-run (ConnectionError)"""
SPOOF_PRINT = f"""\
import sys

TEXTS = ["Docker engine", "docker refused the container: 500 Server Error",
         "infrastructure-error", "failure_kind: infrastructure",
         "the Docker engine stopped answering mid-run (ConnectionError)"]
FAKE = {FAKE_TRACEBACK!r}


def run(ctx):
    for t in TEXTS:
        print(t)
        print(t, file=sys.stderr)
    print(FAKE, file=sys.stderr)
    raise RuntimeError("Docker engine: docker refused the container (infrastructure-error)")
"""
SPOOF_EXIT = """\
import os
import sys


def run(ctx):
    print("efflab: tiny-fit failed (infrastructure): docker refused the container", file=sys.stderr)
    sys.stderr.flush()
    os._exit(3)
"""
SPOOF_REPORT = """\
import os
import signal
import sys
import time


def run(ctx):
    # forge the in-container runner's exit report, then kill the runner before it
    # can write the real one: the host reads what the entry left
    (ctx.out_dir.parent / ".inside.json").write_text('{"docker refused the container": 1}')
    print("the Docker engine stopped answering", file=sys.stderr)
    sys.stderr.flush()
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
"""
SPOOF_OUTPUTS = """\
def run(ctx):
    return {"metrics": 5, "files": 5, "values": "docker refused the container"}
"""


@pytest.mark.parametrize(
    ("variant", "code", "said"),
    [("print", SPOOF_PRINT, "Docker engine"), ("exit", SPOOF_EXIT, "code 3"),
     ("report", SPOOF_REPORT, ""), ("outputs", SPOOF_OUTPUTS, "")],
    ids=["prints-verifier-texts", "exits-nonzero", "forged-exit-report", "malformed-outputs"],
)  # fmt: skip
def test_verifier_text_spoofer_is_the_entrys_failure(arena: Path, tmp_path: Path, variant, code, said) -> None:  # fmt: skip
    before = ledger(arena)
    arc = script_archive(tmp_path, f"spoof-{variant}", code)
    f = submission(tmp_path, f"spoof-{variant}", 4, participant="mallory")
    sign(arena, f, "mallory", arc)
    r, entry = submit(arena, f, "--archive", str(arc))
    assert r.returncode == 1, r.stderr
    assert entry["verdict"] == "rejected" and entry["stage"] == "run", entry
    assert "tiny-fit" in entry["reason"] and said in entry["reason"], entry["reason"]
    assert "the verifier failed" not in r.stderr and "re-queued" not in r.stderr
    assert entry["submission"]["sha256"] == sha(f)
    assert entry["submission"]["archive_sha256"]
    assert entry["submission"]["key"]  # mallory's own, verified: her attempt
    assert queue(arena) == []  # not re-queued
    assert_one_more_line(arena, before, entry)
    b = build(arena)
    assert b["attempts"]["mallory"] == {"attempts": 1, "accepted": 0, "rejected": 1, "infrastructure-error": 0}  # fmt: skip
    assert [x["seq"] for x in b["rejected"]] == [entry["seq"]]


# ---------------------------------------------------------------- 2. identity


def test_impersonation_unsigned_and_bad_signatures_are_rejected(arena: Path, tmp_path: Path) -> None:  # fmt: skip
    from efflab.tournaments.submit import attempt

    t = load_tournament(arena, "tiny")
    victim = row(arena, "ana", "deg3")
    assert victim is not None and victim["key"]
    board0 = build(arena)["entries"]
    before = ledger(arena)

    def try_(name: str, prep) -> dict:
        folder = tmp_path / name
        f = submission(folder, "deg3", 6, participant="ana")  # ana's row, a better degree
        prep(f)
        v = attempt(arena, t, f)
        assert v.verdict == "rejected" and v.stage == "identity", (name, v.reason)
        assert v.entry["submission"]["sha256"] == sha(f)
        assert v.entry["submission"]["participant"] == "ana" and v.entry["submission"]["key"] is None  # fmt: skip
        return v.entry

    def impersonate(f: Path) -> None:  # mallory's registered key over ana's name
        sign(arena, f, "mallory")

    def unsigned(f: Path) -> None:
        pass

    def garbage(f: Path) -> None:
        Path(f"{f}.sig").write_text("bm90IGEgc2lnbmF0dXJl!!\n")

    def replayed(f: Path) -> None:  # ana's real signature over other content
        other = submission(f.parent / "other", "deg3", 3, participant="ana")
        shutil.copyfile(sign(arena, other, "ana"), f"{f}.sig")

    def unregistered_key(f: Path) -> None:
        identity.generate(tmp_path / "stranger")
        signing.sign_submission(arena, "tiny", f, tmp_path / "stranger")

    lines = {
        "impersonation": try_("impersonation", impersonate),
        "unsigned": try_("unsigned", unsigned),
        "garbage": try_("garbage", garbage),
        "replayed": try_("replayed", replayed),
        "unregistered": try_("unregistered", unregistered_key),
    }
    assert "does not verify with the key registered for 'ana'" in lines["impersonation"]["reason"]
    assert lines["unsigned"]["reason"].startswith("unsigned")
    for name in ("garbage", "replayed", "unregistered"):
        assert "does not verify" in lines[name]["reason"], lines[name]["reason"]
    after = ledger(arena)
    assert after[: len(before)] == before and after[len(before) :] == list(lines.values())
    assert build(arena)["entries"] == board0  # the victim's row (and every row) unchanged
    # none of them used up ana's quota: unverified lines are not her attempts
    mine = attempts_in_window(after, t, "ana", datetime.now(UTC))
    assert [e["seq"] for e in mine] == [victim["seq"]]


# ---------------------------------------------------------------- 3. disk filler

FILLER = """\
import errno
import json
import os


def fill(folder, cap_mb):
    n, err = 0, None
    try:
        while n < cap_mb:  # separate 4 MB files: below file_mb, so the quota is what stops it
            with open(os.path.join(folder, f"fill{n}"), "wb") as fh:
                for _ in range(4):
                    fh.write(b"\\xa5" * (1 << 20))
                    fh.flush()
                    n += 1
    except OSError as exc:
        err = errno.errorcode.get(exc.errno, str(exc.errno))
    st = os.statvfs(folder)
    return {"mb": n, "err": err, "size_mb": st.f_blocks * st.f_frsize >> 20}


def run(ctx):
    seen = {"tmp": fill("/tmp", 2048), "folder": fill(str(ctx.out_dir), 2048)}
    os.unlink(os.path.join(str(ctx.out_dir), "fill0"))  # room for the logs; the rest stays
    raise OSError(errno.ENOSPC, "No space left on device (filled: " + json.dumps(seen) + ")")
"""


def _used_under(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_disk_filler_is_stopped_at_the_quota(arena: Path, tmp_path: Path) -> None:
    lim = load_tournament(arena, "tiny").limits
    before = ledger(arena)
    fits = set(arena.glob("artifacts/tiny-fit/*"))
    arc = script_archive(tmp_path, "filler", FILLER)
    f = submission(tmp_path, "filler", 4, participant="cy")
    sign(arena, f, "cy", arc)
    free0 = shutil.disk_usage(arena).free
    r, entry = submit(arena, f, "--archive", str(arc))
    free1 = shutil.disk_usage(arena).free
    assert r.returncode == 1 and entry["verdict"] == "rejected" and entry["stage"] == "run"
    assert "No space left on device" in entry["reason"], entry["reason"]
    seen = json.loads(entry["reason"].split("(filled: ", 1)[1].rsplit(")", 1)[0])
    # each stopped by its cap, well before the 2 GB the entry tried to write
    assert seen["folder"]["err"] == "ENOSPC" and seen["tmp"]["err"] == "ENOSPC", seen
    assert seen["folder"]["size_mb"] == lim["disk_mb"] and seen["folder"]["mb"] <= lim["disk_mb"]
    assert seen["tmp"]["size_mb"] == lim["tmp_mb"] and seen["tmp"]["mb"] <= lim["tmp_mb"]
    # the host disk: a broken quota would have lost the 2 x 2 GB the entry tried to write
    # (other processes share this disk, so the bound has slack); none of it is kept
    assert free0 - free1 < 1 << 30, (free0 - free1) >> 20
    (new,) = set(arena.glob("artifacts/tiny-fit/*")) - fits
    assert not list(new.rglob("fill*")), sorted(p.name for p in new.rglob("*"))
    assert _used_under(new) < 1 << 20
    for ln in Path("/proc/mounts").read_text().splitlines():  # its quota tmpfs is gone
        if "efflab-quota-" in ln:  # (another project's verification may hold one now)
            inv = Path(ln.split()[1]) / "invocation.json"
            assert not inv.exists() or json.loads(inv.read_text()).get("key") != new.name
    assert_one_more_line(arena, before, entry)


# ---------------------------------------------------------------- 4. burst


def test_burst_over_the_limit_is_rejected_and_counted(arena: Path, tmp_path: Path) -> None:
    limit = 2
    respec(arena, submissions={"limit": limit, "window_h": 24})
    before = ledger(arena)
    files = []
    for i in range(limit + 2):
        f = submission(tmp_path, f"burst{i}", 4 + i % 2, participant="cy")
        sign(arena, f, "cy")
        files.append(f)
    env = {k: v for k, v in os.environ.items() if k != "EFFLAB_SCRIPTS_PATH"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "efflab",
                "--repo",
                str(arena),
                "tournament",
                "submit",
                "tiny",
                str(f),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for f in files
    ]
    told = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode in (0, 1) and "Traceback" not in err, err
        told.append({k: v for k, v in json.loads(out).items() if k != "position"})
    verdicts = sorted((e["verdict"], e["stage"]) for e in told)
    assert verdicts == [("accepted", None)] * limit + [("rejected", "limit")] * 2, verdicts
    over = [e for e in told if e["stage"] == "limit"]
    assert all(f"the limit is {limit}" in e["reason"] for e in over)
    assert all(e["submission"]["sha256"] and e["submission"]["key"] for e in over)
    assert all(not e["verification"]["keys"] for e in over)  # nothing of theirs ran
    after = ledger(arena)
    assert after[: len(before)] == before and len(after) == len(before) + limit + 2
    b = build(arena)
    assert b["attempts"]["cy"] == {"attempts": limit + 2, "accepted": limit, "rejected": 2, "infrastructure-error": 0}  # fmt: skip
    md = cli(arena, "tournament", "leaderboard", "tiny").stdout
    assert f"| cy | {limit + 2} | {limit} | 2 | 0 |" in md


# ---------------------------------------------------------------- 5. spec drift


def test_spec_drift_marks_stale_and_reverify_reranks(arena: Path, tmp_path: Path) -> None:
    old = {(r["participant"], r["entry"]): r for r in build(arena)["entries"]}
    assert set(old) == {("ana", "deg3"), ("bo", "deg5")}
    # the organiser tightens the bound: deg3 (error ~0.049) no longer qualifies, deg5 does
    respec(arena, constraints=[{"metric": "error", "op": "<=", "value": 0.01}])
    b = build(arena)
    assert b["entries"] == [] and {(s["participant"], s["entry"]) for s in b["stale"]} == set(old)
    f = submission(tmp_path, "deg6", 6, participant="cy")
    sign(arena, f, "cy")
    r, new = submit(arena, f)
    assert r.returncode == 0 and new["verdict"] == "accepted", r.stderr
    assert new["scoring_sha256"] == load_tournament(arena, "tiny").scoring_sha256
    b = build(arena)
    assert [(x["participant"], x["entry"]) for x in b["entries"]] == [("cy", "deg6")]
    assert len(b["stale"]) == 2  # listed apart, never ranked with the new entry
    md = cli(arena, "tournament", "leaderboard", "tiny").stdout
    assert "stale" in md.lower()
    before = ledger(arena)
    r = cli(arena, "tournament", "reverify", "tiny", "--json")
    assert r.returncode == 1, r.stderr  # one of the two no longer qualifies
    assert "Traceback" not in r.stderr
    redone = json.loads(r.stdout)
    assert ledger(arena)[len(before) :] == redone
    by = {e["submission"]["participant"]: e for e in redone}
    assert set(by) == {"ana", "bo"}
    assert (
        by["bo"]["verdict"] == "accepted" and by["bo"]["reverify_of"] == old[("bo", "deg5")]["seq"]
    )
    assert by["ana"]["verdict"] == "rejected" and by["ana"]["stage"] == "constraint"
    assert "needs <= 0.01" in by["ana"]["reason"] or "0.01" in by["ana"]["reason"]
    for e in redone:  # the same stored submission, measured again under the new spec
        assert e["scoring_sha256"] == new["scoring_sha256"]
        assert e["submission"]["sha256"] == before[e["reverify_of"]]["submission"]["sha256"]
        assert e["submission"]["key"] == before[e["reverify_of"]]["submission"]["key"]
    b = build(arena)
    ranked = {(x["participant"], x["entry"]) for x in b["entries"]}
    assert ranked == {("cy", "deg6"), ("bo", "deg5")}
    assert ("ana", "deg3") not in ranked
    assert b["attempts"]["bo"]["attempts"] == 1  # the organiser's re-run is not bo's attempt
    r = cli(arena, "tournament", "reverify", "tiny")  # ana's was measured under this spec
    assert r.returncode == 0 and "nothing to reverify" in r.stdout, r.stderr


# ---------------------------------------------------------------- 6. infrastructure


def test_real_infrastructure_error_is_recorded_requeued_and_retried(arena: Path, tmp_path: Path) -> None:  # fmt: skip
    # an organiser-side setting the schema takes and Docker refuses (CPU quota below
    # 0.01): the verifier's failure, produced by the real engine, not the entry's
    respec(arena, verification__limits__cpus=0.001)
    before = ledger(arena)
    f = submission(tmp_path, "deg4", 4, participant="cy")
    sign(arena, f, "cy")
    r, entry = submit(arena, f)
    assert r.returncode == 1, r.stderr
    assert entry["verdict"] == "infrastructure-error", entry
    assert "docker refused the container" in entry["reason"], entry["reason"]
    assert "the verifier failed, not the entry" in r.stderr and "re-queued" in r.stderr
    assert entry["submission"]["sha256"] == sha(f) and entry["submission"]["key"]
    assert queue(arena) == [f"{entry['submission']['id']}.json"]
    assert_one_more_line(arena, before, entry)
    assert row(arena, "cy", "deg4") is None
    respec(arena, verification__limits__cpus=1)  # the organiser fixes it
    r = cli(arena, "tournament", "retry", "tiny", "--json")
    assert r.returncode == 0, r.stderr
    (again,) = json.loads(r.stdout)
    assert again["verdict"] == "accepted" and again["retry_of"] == entry["seq"]
    assert again["submission"]["sha256"] == entry["submission"]["sha256"]
    assert again["submission"]["key"] == entry["submission"]["key"]
    assert queue(arena) == []
    assert ledger(arena)[len(before) :] == [entry, again]
    got = row(arena, "cy", "deg4")
    assert got is not None and got["seq"] == again["seq"]
    b = build(arena)
    assert b["attempts"]["cy"] == {"attempts": 1, "accepted": 1, "rejected": 0, "infrastructure-error": 1}  # fmt: skip
    r = cli(arena, "tournament", "retry", "tiny")
    assert r.returncode == 0 and "nothing to retry" in r.stdout


# ---------------------------------------------------------------- 7. prober

PROBER = """\
import errno
import json
import os

import numpy as np


def _read(p):
    try:
        with open(p, errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        return "ERR " + errno.errorcode.get(exc.errno, str(exc.errno))


def run(ctx):
    seen = {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid()}
    seen["mountinfo"] = _read("/proc/self/mountinfo")
    seen["status"] = _read("/proc/self/status")
    seen["net"] = sorted(os.listdir("/sys/class/net"))
    seen["env"] = dict(os.environ)
    procs = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            procs[pid] = {"cmdline": _read(f"/proc/{pid}/cmdline").replace("\\0", " "),
                          "environ": _read(f"/proc/{pid}/environ").replace("\\0", "\\n")}
    seen["procs"] = procs
    files = []
    for top in ("/work", "/root", "/home", "/var/run", "/run", "/srv", "/mnt", "/etc"):
        for root, dirs, names in os.walk(top):
            files += [os.path.join(root, n) for n in names]
    seen["files"] = files
    writes = {}
    for p in ("/pwned", "/usr/pwned", "/etc/pwned", "/var/pwned", "/opt/efflab/efflab/pwned"):
        try:
            open(p, "w").close()
            writes[p] = "written"
        except OSError as exc:
            writes[p] = errno.errorcode.get(exc.errno, str(exc.errno))
    seen["writes"] = writes
    x = np.linspace(0, np.pi, 200)
    (ctx.out_dir / "coeffs.json").write_text(json.dumps(np.polyfit(x, np.sin(x), ctx.inputs["degree"]).tolist()))
    (ctx.out_dir / "seen.json").write_text(json.dumps(seen))
    return {"files": {"coeffs": "coeffs.json"}}
"""
INTERFACE = {
    "EFFLAB_OUT_DIR",
    "EFFLAB_OUTPUTS",
    "EFFLAB_DEPS",
    "EFFLAB_REPETITION",
    "EFFLAB_RUNTIME",
}


def test_proc_mount_and_environment_prober_sees_only_its_own(arena: Path, tmp_path: Path) -> None:
    before = ledger(arena)
    fits = set(arena.glob("artifacts/tiny-fit/*"))
    arc = script_archive(tmp_path, "prober", PROBER)
    f = submission(tmp_path, "prober", 4, participant="cy")
    sign(arena, f, "cy", arc)
    r, entry = submit(arena, f, "--archive", str(arc))
    assert r.returncode == 0 and entry["verdict"] == "accepted", r.stderr  # contained, not refused
    assert_one_more_line(arena, before, entry)
    (folder,) = set(arena.glob("artifacts/tiny-fit/*")) - fits
    seen = json.loads((folder / "out/seen.json").read_text())
    script_dir = arena / "results/tournaments/tiny" / entry["submission"]["archive"]
    script_dir = script_dir.parent / "scripts/tiny-fit"
    # uid: unprivileged (efflab runs as root here: the sandbox uid), no capabilities
    assert seen["uid"] == seen["euid"] != 0 and seen["gid"] != 0
    if os.getuid() == 0:
        assert seen["uid"] == 10001
    caps = {ln.split(":")[0]: int(ln.split()[1], 16) for ln in seen["status"].splitlines() if ln.startswith("Cap")}  # fmt: skip
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == 0, caps
    # network: loopback only
    assert seen["net"] == ["lo"]
    # root read-only, efflab's package read-only
    assert set(seen["writes"].values()) <= {"EROFS", "EACCES"}, seen["writes"]
    assert seen["writes"]["/pwned"] == seen["writes"]["/usr/pwned"] == "EROFS"
    # mounts: the image's root, the kernel's pseudo-filesystems, and its own folders only
    own = {str(folder), str(script_dir), "/opt/efflab/efflab", "/tmp", "/usr/sbin/docker-init"}
    pseudo = ("/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
    targets = {ln.split()[4] for ln in seen["mountinfo"].splitlines()}
    extra = {m for m in targets - own - {"/"} if not m.startswith(pseudo)}
    assert not extra, extra
    writable = {ln.split()[4] for ln in seen["mountinfo"].splitlines() if "rw" in ln.split()[5].split(",")}  # fmt: skip
    assert {m for m in writable if not m.startswith(pseudo)} <= {str(folder), "/tmp"}, writable
    # no host file: nothing of /work, /root, the repo, the docker socket is visible
    host_bits = [str(REPO), "/work", str(arena / "results"), str(Path.home() / ".config/efflab")]
    assert not [p for p in seen["files"] if any(p.startswith(h) for h in host_bits)]
    assert not [p for p in seen["files"] if "docker.sock" in p]
    # /proc: only the container's own processes, no host process
    cmdlines = [p["cmdline"] for p in seen["procs"].values()]  # docker-init, runner, script
    assert all(f"efflab.runtime.runner --inside {folder}" in c for c in cmdlines), cmdlines
    assert len(cmdlines) <= 4
    # environment: none of the verifier's EFFLAB_* variables, in its own or any visible process
    env = seen["env"]
    mine = {k for k in env if k.startswith("EFFLAB_") and not k.startswith("EFFLAB_IN_")}
    assert mine <= INTERFACE, mine
    for bad in ("EFFLAB_SEALED", "EFFLAB_RUN_ID", "EFFLAB_OWNER", "EFFLAB_ORGANISER_DIR"):
        assert bad not in env
    blob = json.dumps(seen)
    assert CANARY not in blob and "EFFLAB_HOSTILE_CANARY" not in blob
    assert "EFFLAB_SEALED" not in blob and "own_files_only" not in blob


# ------------------------------------------- 1b. the host's own files, planted

PLANTER = """\
import json
import os

import numpy as np


def run(ctx):
    folder = ctx.out_dir.parent
    for name in ("outputs.json", "failure.json", ".outputs.done.json"):
        os.makedirs(folder / name / "x", exist_ok=True)  # the runner's own write would fail
    inv = json.loads((folder / "invocation.json").read_text())
    inv["deps"] = {"loot": {"alias": "../results", "key": "tournaments"}}
    (folder / "invocation.json").write_text(json.dumps(inv))
    x = np.linspace(0, np.pi, 200)
    (ctx.out_dir / "coeffs.json").write_text(json.dumps(np.polyfit(x, np.sin(x), ctx.inputs["degree"]).tolist()))
    return {"files": {"coeffs": "coeffs.json"}}
"""


def test_runtime_files_planted_by_an_entry_are_not_taken(arena: Path, tmp_path: Path) -> None:
    before = ledger(arena)
    fits = set(arena.glob("artifacts/tiny-fit/*"))
    arc = script_archive(tmp_path, "planter", PLANTER)
    f = submission(tmp_path, "planter", 4, participant="cy")
    sign(arena, f, "cy", arc)
    r, entry = submit(arena, f, "--archive", str(arc))
    # not an infrastructure-error (that would be re-queued and not counted): contained
    assert r.returncode == 0 and entry["verdict"] == "accepted", (r.stderr, entry.get("reason"))
    assert queue(arena) == []
    (folder,) = set(arena.glob("artifacts/tiny-fit/*")) - fits
    assert (folder / "outputs.json").is_file() and (folder / "failure.json").exists() is False
    assert "loot" not in (folder / "invocation.json").read_text()
    assert_one_more_line(arena, before, entry)


# ---------------------------------------------------------------- the ledger's proof (#31)


def test_honest_keyed_ledger_proves_and_a_copied_entry_does_not(arena: Path) -> None:
    """Real sealed verdicts verify end to end (signatures, digests, run records); the
    same accepted line appended again with a better number, by efflab's own ledger code
    on the organiser's machine, fails naming it and is not ranked."""
    from efflab.tournaments.organiser import tournament_ledger

    r = cli(arena, "tournament", "verify-ledger", "tiny", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] and not out["problems"], r.stdout
    es = ledger(arena)
    ana = next(e for e in es if (e.get("submission") or {}).get("participant") == "ana")
    assert ana["submission"]["signature"] and ana["submission"]["signed"]["submission_sha256"] == ana["submission"]["sha256"]  # fmt: skip
    body = {k: v for k, v in ana.items() if k not in ("seq", "prev", "hash", "head_sig")}
    body["metrics"] = {**body["metrics"], "eval_us": 1e-8}
    body["repetitions"] = {**body["repetitions"], "eval_us": [1e-8] * len(body["repetitions"]["eval_us"])}  # fmt: skip
    tournament_ledger(arena / "results/tournaments/tiny", "tiny").append(body)
    r = cli(arena, "tournament", "verify-ledger", "tiny")
    assert r.returncode == 1
    assert f"entry {len(es)} (line {len(es) + 1}): its eval_us repetitions are not what its run records measured" in r.stderr  # fmt: skip
    assert all(x["seq"] != len(es) for x in build(arena)["entries"])
