"""Local jobs are served by one warm job server, with the same results as the runner.

A run.py script records which process forked it and that one's parent, so the test
sees which path ran: a host job in the server itself (the script's parent is the
server, whose parent is efflab), in a runner child forked by the server
(EFFLAB_JOBSERVER_INPROCESS=off: parent and grandparent are both the server's
command line), or in a `python -m efflab.runtime.runner` process (no server). The
tables of all paths must be identical. run.sh scripts, which the server starts with
vfork and no parent-death signal, must still time out and die with a killed run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from conftest import efflab, make_tiny_repo, write
from reliability_helpers import processes_in, start, wait_until

from efflab.core.lifeline import start_time

WHO_META = """\
alias: who
uid: 00000000000000b1
tags: [who]
description: Records the command line of the process that started the runner code.
version: "1"
run: run.py
inputs:
  i: {type: integer, default: 0}
outputs:
  metrics:
    i2: {unit: "1", better: lower}
"""
WHO_PY = """\
import os
from pathlib import Path


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode()


def ppid(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def run(ctx):
    runner = os.getppid()  # the script is forked by the runner's code
    (ctx.out_dir / "who.txt").write_text(cmdline(runner) + "\\n" + cmdline(ppid(runner)))
    return {"metrics": {"i2": ctx.inputs["i"] ** 2}}
"""


def starters(repo: Path) -> list[str]:
    return [f.read_text() for f in repo.glob("artifacts/who/*/out/who.txt")]


def who_repo(root: Path) -> Path:
    repo = make_tiny_repo(root)
    write(repo / "scripts/who/meta.yaml", WHO_META)
    write(repo / "scripts/who/run.py", WHO_PY)
    write(repo / "workflows/experiments/who.yaml", "name: who\nscript: who\ngrid: {i: [1, 2, 3]}\n")
    return repo


def test_jobs_go_through_the_job_server_and_match_the_runner(tmp_path: Path) -> None:
    tables, seen = {}, {}
    for path, env in (
        ("inprocess", None),
        ("forked", {"EFFLAB_JOBSERVER_INPROCESS": "off"}),
        ("runner", {"EFFLAB_JOBSERVER": "off"}),
    ):
        repo = who_repo(tmp_path / path)
        r = efflab(repo, "run", "who", "--cores", "2", "--json", "--runtime", "host", env=env,
                   check=True)  # fmt: skip
        tables[path] = json.loads(r.stdout)["who"]["rows"]
        seen[path] = [s.splitlines() for s in starters(repo)]
        assert len(seen[path]) == 3, (path, seen[path])
    # the script's parent is the server; the server's parent is efflab's CLI
    assert all("efflab.runtime.jobserver" in a and "efflab.runtime.jobserver" not in b
               for a, b in seen["inprocess"]), seen["inprocess"]  # fmt: skip
    # a runner child forked by the server: the server's command line, twice
    assert all("efflab.runtime.jobserver" in a and "efflab.runtime.jobserver" in b
               for a, b in seen["forked"]), seen["forked"]  # fmt: skip
    assert all("efflab.runtime.runner" in a for a, _ in seen["runner"]), seen["runner"]
    assert tables["inprocess"] == tables["forked"] == tables["runner"]
    assert len(tables["inprocess"]) == 3


SLEEPER_META = """\
alias: sleeper
uid: 00000000000000b2
tags: [sleeper]
description: Sleeps (a run.sh script), noting its pid first.
version: "1"
run: run.sh
inputs:
  s: {type: number, default: 30}
outputs:
  metrics:
    ok: {unit: "1", better: higher}
resources:
  timeout_s: 1
"""
SLEEPER_SH = """\
echo $$ > "$EFFLAB_OUT_DIR/pid"
sleep "$EFFLAB_IN_S"
echo '{"metrics": {"ok": 1}}' > "$EFFLAB_OUTPUTS"
"""


def sleeper_repo(root: Path, timeout_s: int) -> Path:
    repo = make_tiny_repo(root)
    write(
        repo / "scripts/sleeper/meta.yaml",
        SLEEPER_META.replace("timeout_s: 1", f"timeout_s: {timeout_s}"),
    )
    write(repo / "scripts/sleeper/run.sh", SLEEPER_SH)
    write(repo / "workflows/experiments/nap.yaml", "name: nap\nscript: sleeper\n")
    return repo


def _alive(pid: int) -> bool:
    return start_time(pid) is not None  # None: no such process, or a zombie


def test_a_served_shell_script_times_out_as_under_the_runner(tmp_path: Path) -> None:
    repo = sleeper_repo(tmp_path / "p", timeout_s=1)
    t0 = time.monotonic()
    r = efflab(repo, "run", "nap", "--runtime", "host")
    assert r.returncode == 1 and "timeout" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 25  # killed at 1 s, not slept for 30
    (fail,) = [json.loads(f.read_text()) for f in repo.glob("artifacts/sleeper/*/failure.json")]
    assert fail["failure_kind"] == "timeout"
    (pid,) = [int(f.read_text()) for f in repo.glob("artifacts/sleeper/*/out/pid")]
    assert not _alive(pid)


def test_kill9_of_the_run_group_ends_a_served_shell_script(tmp_path: Path) -> None:
    repo = sleeper_repo(tmp_path / "p", timeout_s=120)
    proc = start(repo, "run", "nap", "-q", "--runtime", "host")
    pids = wait_until(lambda: list(repo.glob("artifacts/sleeper/*/out/pid")), 120)
    assert pids, "the script never started"
    pid = int(wait_until(lambda: pids[0].read_text().strip(), 5))
    os.killpg(proc.pid, signal.SIGKILL)  # efflab and everything in its group, at once
    proc.communicate(timeout=30)
    assert wait_until(lambda: not _alive(pid), 5), f"script {pid} outlived the killed run"
    assert wait_until(lambda: not processes_in(repo), 5), processes_in(repo)


def test_a_failure_through_the_server_is_a_failed_record(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "run", "demo", "--quick", "--set", "fail=true")
    assert r.returncode == 1 and "asked to fail" in r.stderr
    fails = [json.loads(f.read_text()) for f in tiny_repo.glob("artifacts/square/*/failure.json")]
    assert len(fails) == 4 and {f["failure_kind"] for f in fails} == {"script"}
