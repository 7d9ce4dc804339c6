"""The Docker runtime for real: env images, sealed containers, limits, cancellation.

Every test runs the real CLI against a throwaway project (the shared `tiny_repo`
plus a copy of envs/base and a few tiny scripts) on a real Docker engine; nothing is
mocked. Only the small `base` env is built here (once: its tag is content-addressed,
so every throwaway project shares the image); ml-cpu lives in test_docker_mlcpu.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker

DET_META = """\
alias: det
uid: 00000000000000d1
tags: [demo, det]
description: Deterministic numbers from a seed plus a dep's file (numpy).
version: "1"
env: base
run: run.py
inputs:
  n: {type: integer, default: 5}
  seed: {type: integer, default: 7}
deps:
  - {name: src, tags: "demo,gen", inputs: {n: "{n}"}}
outputs:
  metrics:
    total: {unit: "1", better: higher}
    dep_sum: {unit: "1", better: higher}
  files:
    data: {}
"""
DET_PY = """\
import hashlib
import numpy as np


def run(ctx):
    x = np.random.default_rng(ctx.inputs["seed"]).integers(0, 1000, size=50)
    (ctx.out_dir / "data.txt").write_text(" ".join(map(str, x.tolist())) + "\\n")
    nums = [int(v) for v in ctx.deps["src"].files["numbers"].read_text().split()]
    return {
        "metrics": {"total": float(x.sum()), "dep_sum": float(sum(nums))},
        "files": {"data": "data.txt"},
        "values": {"sha": hashlib.sha256(x.tobytes()).hexdigest(), "numpy": np.__version__},
    }
"""
PROBE_META = """\
alias: {alias}
uid: {uid}
tags: [demo, {alias}]
description: Probes the sandbox (network, memory, time).
version: "1"
env: base
run: run.py
inputs:
  connect: {{type: boolean, default: false}}
  alloc_mb: {{type: integer, default: 0}}
  sleep_s: {{type: number, default: 0}}
outputs:
  metrics:
    interfaces: {{unit: "1", better: lower}}
resources:
{resources}
"""
PROBE_PY = """\
import os, socket, time


def run(ctx):
    ifaces = sorted(os.listdir("/sys/class/net"))
    if ctx.inputs["connect"]:
        socket.create_connection(("1.1.1.1", 80), timeout=5).close()
    hog = b"x" * (ctx.inputs["alloc_mb"] << 20)
    time.sleep(ctx.inputs["sleep_s"])
    return {"metrics": {"interfaces": len(ifaces)}, "values": {"ifaces": ifaces, "n": len(hog)}}
"""
PROBES = {
    "sealed": ("00000000000000d2", "  timeout_s: 4\n  mem_mb: 128\n"),
    "netopen": ("00000000000000d3", "  network: true\n"),
    "sleeper": ("00000000000000d4", "  timeout_s: 120\n"),
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def experiment(repo: Path, name: str, script: str, grid: dict | None = None, **inputs) -> None:
    spec = {"name": name, "script": script, "inputs": inputs, "grid": grid or {}}
    write(repo / "workflows/experiments" / f"{name}.yaml", json.dumps(spec))


def client():
    import docker

    return docker.from_env(timeout=60)


def containers(**labels: str) -> list:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    return client().containers.list(all=True, filters=filters, ignore_removed=True)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Path:
    """A project with envs/base, its wheelhouse resolved and image built (once)."""
    from conftest import make_tiny_repo

    repo = make_tiny_repo(tmp_path_factory.mktemp("docker") / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    for alias in ("gen", "square"):
        meta = repo / "scripts" / alias / "meta.yaml"
        meta.write_text(meta.read_text().replace("run: run", "env: base\nrun: run"))
    write(repo / "scripts/det/meta.yaml", DET_META)
    write(repo / "scripts/det/run.py", DET_PY)
    for alias, (uid, res) in PROBES.items():
        write(repo / "scripts" / alias / "meta.yaml",
              PROBE_META.format(alias=alias, uid=uid, resources=res))  # fmt: skip
        write(repo / "scripts" / alias / "run.py", PROBE_PY)
    experiment(repo, "det", "demo,det", grid={"n": [3, 4]})
    proc = subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), "env", "build", "base"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return repo


@pytest.fixture
def proj(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template (copy2 keeps mtimes, so its wheelhouse stays valid)."""
    repo = tmp_path / "proj"
    shutil.copytree(template, repo, symlinks=True)
    return repo


def records(repo: Path, exp: str, failed: bool = False) -> list[dict]:
    files = sorted((repo / "results" / exp / "runs").glob("*.json"))
    return [json.loads(f.read_text()) for f in files if f.name.endswith(".failed.json") == failed]


def test_same_outputs_on_host_and_in_docker(proj: Path, tmp_path: Path, run_efflab) -> None:
    other = tmp_path / "other"
    shutil.copytree(proj, other, symlinks=True)
    host = json.loads(run_efflab(proj, "run", "det", "--runtime", "host", "--json", "-q",
                                 check=True).stdout)["det"]  # fmt: skip
    dock = json.loads(run_efflab(other, "run", "det", "--runtime", "docker", "--json", "-q",
                                 check=True).stdout)["det"]  # fmt: skip
    assert host["rows"] == dock["rows"] and host["jobs_run"] == dock["jobs_run"] == 4
    for repo, runtime in ((proj, "host"), (other, "docker")):
        for rec in records(repo, "det"):
            assert rec["provenance"]["runtime"] == runtime
            assert (rec["provenance"]["image"] or "").startswith("sha256:") == (runtime == "docker")

    # the runtime enters the key (#32): the twins are the invocations of the same script
    # and inputs, under different keys
    def by_inputs(repo: Path) -> dict[str, Path]:
        out = {}
        for f in (repo / "artifacts").glob("*/*/outputs.json"):
            inv = json.loads((f.parent / "invocation.json").read_text())
            out[json.dumps([inv["alias"], inv["inputs"]], sort_keys=True)] = f
        return out

    hosts, docks = by_inputs(proj), by_inputs(other)
    assert hosts.keys() == docks.keys() and len(hosts) == 4
    for ident, out in hosts.items():
        twin = docks[ident]
        a, b = json.loads(out.read_text()), json.loads(twin.read_text())
        assert (a["runtime"], b["runtime"]) == ("host", "docker")
        assert a["key"] != b["key"]
        for field in ("metrics", "files", "values", "env_digest"):
            assert a[field] == b[field], field
        for rel in a["files"].values():
            assert (out.parent / rel).read_bytes() == (twin.parent / rel).read_bytes()
        assert (twin.parent / "stdout.log").exists() and (twin.parent / "stderr.log").exists()
        st = (twin.parent / "out").stat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert not containers(**{"efflab.run": records(other, "det")[0]["run_id"]})


def test_env_cached_and_dockerfile_change_rebuilds(proj: Path, run_efflab) -> None:
    def build() -> dict:
        row = json.loads(run_efflab(proj, "env", "build", "base", "--json", check=True).stdout)[0]
        return row

    def keys() -> set[str]:
        plan = json.loads(run_efflab(proj, "plan", "det", "--json", check=True).stdout)
        return {inv["key"] for inv in plan["invocations"]}

    first, second = build(), build()
    assert (
        second["cached"]
        and second["tag"] == first["tag"]
        and second["image_id"] == first["image_id"]
    )
    before = keys()
    dockerfile = proj / "envs/base/Dockerfile"
    original = dockerfile.read_text()
    dockerfile.write_text(original + 'LABEL efflab.test.change="1"\n')
    changed = build()
    assert not changed["cached"] and changed["tag"] != first["tag"]
    assert keys().isdisjoint(before)  # gen and det both run in base: every key moves
    listed = json.loads(run_efflab(proj, "env", "list", "--json", check=True).stdout)
    assert {(r["name"], r["tag"], r["built"]) for r in listed} == {("base", changed["tag"], True)}
    dockerfile.write_text(original)
    assert build()["cached"] and keys() == before
    pruned = json.loads(run_efflab(proj, "env", "prune", "--json", check=True).stdout)
    assert any(changed["tag"] in p for p in pruned)
    tags = {t for img in client().images.list(name="efflab-env/base") for t in img.tags}
    assert first["tag"] in tags and changed["tag"] not in tags


def test_sealed_container_has_no_network(proj: Path, run_efflab) -> None:
    experiment(proj, "open", "demo,netopen")
    experiment(proj, "probe", "demo,sealed")
    experiment(proj, "leak", "demo,sealed", connect=True)
    opened = json.loads(run_efflab(proj, "run", "open", "--runtime", "docker", "--json", "-q",
                                   check=True).stdout)  # fmt: skip
    assert opened["open"]["rows"][0]["median"] >= 2  # lo + an interface when declared
    sealed = json.loads(run_efflab(proj, "run", "probe", "--runtime", "docker", "--json", "-q",
                                   check=True).stdout)  # fmt: skip
    assert sealed["probe"]["rows"][0]["median"] == 1  # only lo
    r = run_efflab(proj, "run", "leak", "--runtime", "docker", "-q")
    assert r.returncode == 1
    (rec,) = records(proj, "leak", failed=True)
    assert "unreachable" in rec["error"].lower() or "OSError" in rec["error"]
    assert rec["provenance"]["runtime"] == "docker"
    assert not containers(**{"efflab.run": rec["run_id"]})
    assert not (proj / "artifacts/sealed" / rec["key"] / "outputs.json").exists()


@pytest.mark.parametrize(
    ("inputs", "expect"),
    [({"sleep_s": 60}, "timeout"), ({"alloc_mb": 600}, "out of memory")],
    ids=["timeout", "memory"],
)
def test_limit_breach_is_a_failed_record(proj: Path, run_efflab, inputs, expect) -> None:
    experiment(proj, "breach", "demo,sealed", **inputs)
    t0 = time.monotonic()
    r = run_efflab(proj, "run", "breach", "--runtime", "docker", "-q")
    assert r.returncode == 1 and expect in r.stderr
    assert time.monotonic() - t0 < 45
    (rec,) = records(proj, "breach", failed=True)
    assert expect in rec["error"] and rec["status"] == "failed"
    assert not containers(**{"efflab.run": rec["run_id"]})
    assert not containers(**{"efflab.key": rec["key"]})
    assert not list((proj / "artifacts/sealed").glob("*/outputs.json"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cancel_removes_every_container(proj: Path, sig: signal.Signals) -> None:
    experiment(proj, "slow", "demo,sleeper", grid={"sleep_s": [60, 61]})
    proc = subprocess.Popen(
        [sys.executable, "-m", "efflab", "--repo", str(proj), "run", "slow", "--runtime",
         "docker", "--cores", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline, running = time.monotonic() + 90, []
    while time.monotonic() < deadline and len(running) < 2:
        running = [c for c in containers(**{"efflab.alias": "sleeper"}) if c.status == "running"]
        running = [c for c in running if str(proj) in json.dumps(c.attrs["Mounts"])]
        time.sleep(0.3)
    assert len(running) == 2, proc.communicate(timeout=60)
    run_id = running[0].labels["efflab.run"]
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 15, err
    assert proc.returncode == 130, err
    assert not containers(**{"efflab.run": run_id})
    assert not list((proj / "artifacts/sleeper").glob("*/outputs.json"))


def test_bad_env_inputs_exit_2(proj: Path, run_efflab) -> None:
    def use_env(env: str) -> None:
        meta = proj / "scripts/det/meta.yaml"
        meta.write_text(re.sub(r"(?m)^env: .*$", f"env: {env}", meta.read_text()))

    base = proj / "envs/base"
    use_env("nope")  # unknown env: the planner names the file and the known envs
    r = run_efflab(proj, "run", "det", "--runtime", "docker")
    assert r.returncode == 2 and "envs/nope/Dockerfile" in r.stderr and "base" in r.stderr
    use_env("broken")
    shutil.copytree(base, proj / "envs/broken", ignore=shutil.ignore_patterns("wheels"))
    with open(proj / "envs/broken/Dockerfile", "a") as f:
        f.write("RUN echo efflab-broken-step && exit 3\n")
    before = {c.id for c in client().containers.list(all=True, ignore_removed=True)}
    r = run_efflab(proj, "run", "det", "--runtime", "docker")
    assert r.returncode == 2, r.stderr
    assert "envs/broken/Dockerfile" in r.stderr and "exit code 3 at Step" in r.stderr
    assert "Traceback" not in r.stderr
    new = [c for c in client().containers.list(all=True, ignore_removed=True) if c.id not in before]
    assert not [c for c in new if "efflab-broken-step" in json.dumps(c.attrs["Config"]["Cmd"])]
    assert not list(proj.glob("artifacts/*/*/outputs.json"))
    (proj / "envs/broken/Dockerfile").write_text((base / "Dockerfile").read_text())
    (proj / "envs/broken/requirements.lock").write_text("numpy==0.0.1\n")
    shutil.rmtree(proj / "envs/broken/wheels")
    r = run_efflab(proj, "run", "det", "--runtime", "docker")
    assert r.returncode == 2 and "envs/broken/requirements.lock: line 1" in r.stderr, r.stderr
    assert "numpy==0.0.1" in r.stderr
    assert not (proj / "envs/broken/wheels").exists()
    assert not list((proj / "envs/broken").glob(".wheels-*"))
    (proj / "envs/broken/Dockerfile").unlink()  # a folder without Dockerfile: unknown env
    r = run_efflab(proj, "env", "build", "broken")
    assert r.returncode == 2 and "envs/broken/Dockerfile" in r.stderr


class SocketProxy:
    """A unix-socket forwarder to the real engine that can 'lose' the engine at will."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path, self.target, self.conns = path, target, []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.server.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_UNIX)
            b.connect(self.target)
            self.conns += [a, b]
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def kill(self) -> None:
        self.server.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_engine_lost_mid_run_is_a_failed_record(proj: Path, tmp_path: Path) -> None:
    if os.environ.get("DOCKER_HOST", "unix://").split("://")[0] != "unix" or not os.path.exists(
        "/var/run/docker.sock"
    ):
        pytest.skip("needs the engine on /var/run/docker.sock to put a proxy in front of it")
    proxy = SocketProxy(tmp_path / "docker.sock")
    experiment(proj, "lost", "demo,sleeper", sleep_s=30)
    # a fresh container, whose wait goes through the API: a warm one's job talks to its
    # server over a socket and rightly finishes without the (proxied) API
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}",
           "EFFLAB_WARM_CONTAINERS": "0"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "efflab", "--repo", str(proj), "run", "lost", "--runtime", "docker",
         "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline, running = time.monotonic() + 90, []
    while time.monotonic() < deadline and not running:
        running = [c for c in containers(**{"efflab.alias": "sleeper"}) if c.status == "running"]
        running = [c for c in running if str(proj) in json.dumps(c.attrs["Mounts"])]
        time.sleep(0.3)
    assert running, proc.communicate(timeout=60)
    proxy.kill()
    _, err = proc.communicate(timeout=60)
    try:
        assert proc.returncode == 1, err
        (rec,) = records(proj, "lost", failed=True)
        assert "Docker engine stopped answering" in rec["error"]
        assert not list((proj / "artifacts/sleeper").glob("*/outputs.json"))
    finally:  # the engine is back: the next docker run sweeps what the lost one left
        for c in running:
            c.remove(force=True)


CONTENDED_PAPER = """\
id: squares
title: Sums of squares scale linearly
authors: [A. Tester]
year: 2024
link: https://example.org/squares
scale: {paper: "toy", ours: "the demo experiment"}
experiments:
  - name: demo
    inputs: {sleep_s: 0.6}
claims:
  - id: scale-doubles
    statement: "Doubling the scale doubles the sum of squares."
    paper: {value: 2, unit: x, text: "exactly 2x"}
    check:
      within:
        value:
          ratio:
            - {metric: sumsq, where: {n: 3, scale: 2.0}}
            - {metric: sumsq, where: {n: 3, scale: 1.0}}
        rel_tol: {value: 0.01, source: ours, why: "exact arithmetic"}
"""


def test_contended_docker_record_is_re_measured(proj: Path, run_efflab, monkeypatch) -> None:
    """A docker record carries the job side's contention measurement, and a timing
    record measured while a CPU hog held every core is re-measured by `reproduce`,
    exactly as a host record is (tests/papers/test_reproduce.py)."""
    # no wait for a quiet machine: the hog stays, so the rounds run under it and stop
    # when one clears nothing
    monkeypatch.setenv("EFFLAB_QUIET_WAIT_S", "0")
    meta = proj / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace("  timeout_s: 60\n", "  timeout_s: 60\n  exclusive: true\n"))  # fmt: skip
    write(proj / "workflows/papers/squares.yaml", CONTENDED_PAPER)
    ncpu = os.cpu_count() or 1
    # one busy loop per core: while `square` sleeps 0.6 s, others use ~every core,
    # more than the ncpu - 1 it leaves free
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(ncpu)
    ]
    try:
        time.sleep(0.5)  # the hogs are up before anything is measured
        r = run_efflab(proj, "reproduce", "squares", "--quick", "--runtime", "docker",
                       "--cores", "2", "--json")  # fmt: skip
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert r.returncode in (0, 1), r.stdout + r.stderr
    (exp,) = json.loads(r.stdout)["papers"][0]["experiments"]
    recs = records(proj, "demo")
    squares = [x for x in recs if x["alias"] == "square"]
    assert squares and all(x["provenance"]["runtime"] == "docker" for x in squares)
    for x in squares:
        c = x["contention"]
        assert c["others_cores"] is not None and c["cpus_given"] == 1.0 and c["ncpu"] == ncpu
        assert c["others_cores"] > ncpu - 1 + 0.25 and x["contended"] is True, c
    assert exp["timing"] and exp["remeasured"] >= 1, exp
    aside = list(proj.glob("artifacts/square/*/outputs.contended-*.json"))
    assert aside and all(
        json.loads(f.read_text())["contention"]["contended"] is True for f in aside
    )
    assert exp["still_contended"] >= 1  # the hog never stopped: still contended, said so
    # bounded, and the report says why it stopped: normally the first round already
    # cleared none (the hog never stopped), at most after the last allowed round
    assert exp["remeasured"] <= 2 * len(squares)
    assert any(w in exp["remeasure_stop"] for w in ("cleared none", "rounds")), exp
    # measured again, in a container again
    for f in proj.glob("artifacts/square/*/outputs.json"):
        assert json.loads(f.read_text())["runtime"] == "docker"
