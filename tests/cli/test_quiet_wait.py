"""The one quiet-machine waiter of `run`, `reproduce` and `optimize`: a wait is shown
while it lasts, bounded by one budget per command, and switchable from the command
line. The busy machine is real: one busy loop per core, read from /proc/stat."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from efflab.cli.common import WaitNotice
from efflab.workflow import remeasure
from tests.conftest import efflab


def test_one_budget_per_command_then_only_probes(monkeypatch) -> None:
    asked: list[float] = []
    t = [0.0]

    def fake_wait(max_wait_s=None, on_wait=None, **_kw):
        asked.append(max_wait_s)
        if max_wait_s > 1e-6:  # a real wait: busy for 30 s, then quiet
            on_wait(1.8, 30.0, max_wait_s)
            t[0] += 30.0
        return True

    monkeypatch.setattr(remeasure, "wait_for_quiet", fake_wait)
    heard: list[tuple] = []
    w = remeasure.QuietWaiter(45, on_wait=lambda *a: heard.append(a), clock=lambda: t[0])
    assert w() is True  # waited 30 of 45 s
    assert w() is True  # what is left of the budget: 15 s, spent too
    assert w() is True  # the budget is spent: one probe
    assert asked[0] == 45 and asked[1] == 15 and asked[2] < 1e-6
    assert heard[0] == (1.8, 30.0, 45.0) and heard[1] == (1.8, 60.0, 45.0)


def test_no_quiet_wait_never_probes(monkeypatch) -> None:
    monkeypatch.setattr(remeasure, "wait_for_quiet", lambda *a, **k: pytest.fail("probed"))
    assert remeasure.QuietWaiter(0)() is True


def test_the_line_says_what_it_waits_for_and_how_to_skip() -> None:
    assert WaitNotice.text(1.83, 45.2, 120) == (
        "waiting for a quieter machine: others use 1.8 cores (45/120 s; --no-quiet-wait to skip)"
    )


def test_a_bad_environment_value_is_bad_input(monkeypatch) -> None:
    from efflab.core.errors import BadInput

    monkeypatch.setenv("EFFLAB_QUIET_WAIT_S", "soon")
    with pytest.raises(BadInput) as e:
        remeasure.QuietWaiter()
    assert "EFFLAB_QUIET_WAIT_S" in str(e.value.file)


@pytest.mark.parametrize("command", ["run", "reproduce", "optimize"])
def test_every_measuring_command_has_both_flags(tiny_repo: Path, command: str) -> None:
    out = efflab(tiny_repo, command, "--help", check=True).stdout
    assert "--quiet-wait SECONDS" in out and "--no-quiet-wait" in out
    bad = efflab(tiny_repo, command, "x", "--quiet-wait", "-3")
    assert bad.returncode == 2 and "expected a number of seconds >= 0" in bad.stderr


def _exclusive(repo: Path) -> None:
    meta = repo / "scripts/square/meta.yaml"
    meta.write_text(
        meta.read_text().replace("  timeout_s: 60\n", "  timeout_s: 60\n  exclusive: true\n")
    )


def test_run_shows_the_wait_and_the_contended_records(tiny_repo: Path) -> None:
    _exclusive(tiny_repo)
    env = {k: v for k, v in os.environ.items() if k != "EFFLAB_QUIET_WAIT_S"}
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        r = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "--quiet-wait", "4",
                   env=env)  # fmt: skip
        waited = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert "efflab: waiting for a quieter machine: others use " in r.stderr
        assert "/4 s; --no-quiet-wait to skip)" in r.stderr
        assert "records contended: other work needed the cores" in r.stdout
        assert "efflab run demo --fresh" in r.stdout
        # --no-quiet-wait: not a word of waiting, and measured at once
        r2 = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "--fresh",
                    "--no-quiet-wait", env=env)  # fmt: skip
        assert r2.returncode == 0, r2.stderr
        assert "waiting for a quieter machine" not in r2.stderr
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert waited >= 4.0  # the wait was the budget asked for, not more than one sample over
