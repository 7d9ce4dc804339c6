"""When re-measuring a contended timing stops (efflab.workflow.remeasure): bounded by
rounds, by a round that cleared nothing, and by a machine that stays busy. The busy
machine is a real busy loop per core, read from /proc/stat."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from efflab.workflow import remeasure


def never(*_a):  # a wait that must not be reached
    raise AssertionError("waited although the rounds were already over")


def test_nothing_contended_or_rounds_used_up_stop_without_waiting() -> None:
    assert remeasure.stop_reason(0, 2, [], None, wait=never) == "none contended"
    why = remeasure.stop_reason(2, 2, ["a"], ["a", "b"], wait=never)
    assert why and "2 re-measurement rounds" in why


def test_a_round_that_cleared_nothing_ends_the_rounds() -> None:
    # a and b were measured again and both came back contended: stop
    why = remeasure.stop_reason(1, 2, ["a", "b", "c"], ["a", "b"], wait=never)
    assert why and "cleared none" in why
    # one of them came back clean: another round is worth it, after the wait
    assert remeasure.stop_reason(1, 2, ["a", "c"], ["a", "b"], wait=lambda: True) is None


def test_a_machine_that_stays_busy_is_not_measured_again() -> None:
    why = remeasure.stop_reason(0, 2, ["a"], None, wait=lambda: False)
    assert why and "stayed busy" in why


def test_wait_for_quiet_polls_until_the_load_drops_or_the_deadline() -> None:
    t = [0.0]
    loads = iter([1.8, 1.1, 0.1])

    def probe():
        t[0] += 2.0
        return next(loads)

    assert remeasure.wait_for_quiet(60, probe=probe, clock=lambda: t[0]) is True
    assert t[0] == 6.0  # three samples, the last one quiet
    t[0] = 0.0
    assert remeasure.wait_for_quiet(5, probe=lambda: (t.__setitem__(0, t[0] + 2), 1.5)[1],
                                    clock=lambda: t[0]) is False  # fmt: skip
    assert remeasure.wait_for_quiet(0, probe=never) is True  # 0: no wait at all


def test_others_busy_cores_sees_a_real_busy_loop_per_core() -> None:
    n = os.cpu_count() or 1
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(n)
    ]
    try:
        time.sleep(0.3)
        busy = remeasure.others_busy_cores(1.0)
        assert busy is not None and busy > n - 0.5, busy  # each loop holds ~a core
        assert (
            remeasure.wait_for_quiet(2.0, probe=lambda: remeasure.others_busy_cores(0.5)) is False
        )
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def test_the_waiter_is_patient_once_then_only_probes(monkeypatch) -> None:
    calls = []

    def fake_wait(max_wait_s=None, **_kw):
        calls.append(max_wait_s)
        return False

    monkeypatch.setattr(remeasure, "wait_for_quiet", fake_wait)
    monkeypatch.delenv("EFFLAB_QUIET_WAIT_S", raising=False)
    w = remeasure.QuietWaiter()
    assert w() is False and w() is False and w() is False
    assert calls[0] == 120.0 and all(0 < c < 1e-6 for c in calls[1:])  # a whole wait, then probes
