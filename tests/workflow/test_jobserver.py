"""Local jobs are served by one warm job server, with the same results as the runner.

A run.py script records which process forked it (the runner's code, in a job-server
child or in a `python -m efflab.runtime.runner` process) so the test sees which path
ran; the tables of both paths must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import efflab, make_tiny_repo, write

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
    tiny_repo = who_repo(tmp_path / "served")
    served = efflab(tiny_repo, "run", "who", "--cores", "2", "--json", check=True)
    seen = starters(tiny_repo)
    assert len(seen) == 3
    # forked from the server: the runner's code runs in a child of the job server
    assert all("efflab.runtime.jobserver" in s for s in seen), seen

    other = who_repo(tmp_path / "off")
    plain = efflab(other, "run", "who", "--json", env={"EFFLAB_JOBSERVER": "off"}, check=True)
    seen = starters(other)
    assert len(seen) == 3
    assert all("efflab.runtime.runner" in s.splitlines()[0] for s in seen), seen
    assert json.loads(served.stdout)["who"]["rows"] == json.loads(plain.stdout)["who"]["rows"]


def test_a_failure_through_the_server_is_a_failed_record(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "run", "demo", "--quick", "--set", "fail=true")
    assert r.returncode == 1 and "asked to fail" in r.stderr
    fails = [json.loads(f.read_text()) for f in tiny_repo.glob("artifacts/square/*/failure.json")]
    assert len(fails) == 4 and {f["failure_kind"] for f in fails} == {"script"}
