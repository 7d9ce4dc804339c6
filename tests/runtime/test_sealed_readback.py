"""What the docker runtime reads back from a folder a sealed script could write (#21).

No Docker needed: the files a hostile entry could leave (a forged exit report, outputs
of the wrong shape, a folder full of junk) are written here directly, and each must be
the script's failure (kind `script`), never the verifier's, and leave nothing kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from efflab.core.locks import FileLock, Locked
from efflab.runtime import sealed
from efflab.runtime.failure import SCRIPT, InvocationFailed
from efflab.runtime.inside_report import read as read_inside_report
from efflab.runtime.outputs import check_outputs
from efflab.tournaments.attempts import participant_lock

GOOD = {"exit_code": 0, "signal": None, "wall_s": 0.5, "cpu_s": 0.4, "max_rss_mb": 30.0}
DECLARED = {"metrics": {"error": {}}, "files": {"coeffs": {}}}


@pytest.mark.parametrize(
    ("report", "code"),
    [("{}", 0), ("[]", 0), ("not json", 0), (json.dumps({**GOOD, "exit_code": True}), 1),
     (json.dumps(GOOD), 137), (json.dumps({**GOOD, "signal": 9}), 0)],
    ids=["empty", "array", "garbage", "bool-code", "forged-then-killed", "bad-signal"],
)  # fmt: skip
def test_a_forged_exit_report_is_the_scripts_failure(tmp_path: Path, report: str, code: int) -> None:  # fmt: skip
    (tmp_path / ".inside.json").write_text(report)
    with pytest.raises(InvocationFailed) as exc:
        read_inside_report(tmp_path, code)
    assert exc.value.kind == SCRIPT and "did not write" in str(exc.value)
    assert not (tmp_path / ".inside.json").exists()


def test_a_report_that_is_a_folder_or_link_is_the_scripts_failure(tmp_path: Path) -> None:
    (tmp_path / ".inside.json").mkdir()
    with pytest.raises(InvocationFailed) as exc:
        read_inside_report(tmp_path, 0)
    assert exc.value.kind == SCRIPT and not (tmp_path / ".inside.json").exists()
    (tmp_path / "real").write_text(json.dumps(GOOD))
    (tmp_path / ".inside.json").symlink_to(tmp_path / "real")
    with pytest.raises(InvocationFailed):
        read_inside_report(tmp_path, 0)
    assert (tmp_path / "real").exists()  # the link went, not what it pointed at


def test_the_runners_own_report_is_read(tmp_path: Path) -> None:
    assert read_inside_report(tmp_path, 0) is None
    (tmp_path / ".inside.json").write_text(json.dumps({**GOOD, "exit_code": 3}))
    assert read_inside_report(tmp_path, 3)["exit_code"] == 3


@pytest.mark.parametrize(
    "result",
    [{"metrics": 5}, {"metrics": {"error": 1.0}, "files": 5},
     {"metrics": {"error": 1.0}, "files": {"coeffs": 5}},
     {"metrics": {"error": 1.0}, "files": {"coeffs": "c.json"}, "values": "x"},
     {"metrics": {"error": 1.0}, "files": {"coeffs": "c.json"}, "energy_spans": {}}],
)  # fmt: skip
def test_outputs_of_the_wrong_shape_are_a_value_error(tmp_path: Path, result: dict) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/c.json").write_text("[1]")
    with pytest.raises(ValueError):
        check_outputs(DECLARED, result, tmp_path)


def test_a_failed_sealed_run_keeps_only_its_logs(tmp_path: Path) -> None:
    f = tmp_path / "inv"
    (f / "out").mkdir(parents=True)
    (f / "invocation.json").write_text("{}")
    before = set(os.listdir(f))
    (f / "out/fill0").write_bytes(b"\xa5" * (1 << 20))
    (f / "out/sub").mkdir()
    (f / "junk").write_bytes(b"x" * 1000)
    (f / "junkdir").mkdir()
    (f / "stdout.log").write_bytes(b"a" * (sealed.LOG_TAIL_BYTES + 10) + b"END")
    (f / "stderr.log").symlink_to("/etc/passwd")
    sealed.discard_written(f, before)
    assert sorted(os.listdir(f)) == ["invocation.json", "out", "stdout.log"]
    assert os.listdir(f / "out") == []
    log = (f / "stdout.log").read_bytes()
    assert len(log) == sealed.LOG_TAIL_BYTES and log.endswith(b"END")


def test_one_participant_counts_attempts_one_at_a_time(tmp_path: Path) -> None:
    with participant_lock(tmp_path, "cy"):
        with pytest.raises(Locked):
            FileLock(tmp_path / "locks/cy.lock").acquire(wait=False)
        FileLock(tmp_path / "locks/bo.lock").acquire(wait=False).release()  # others go on
    FileLock(tmp_path / "locks/cy.lock").acquire(wait=False).release()


def test_copy_back_never_takes_the_hosts_own_names(tmp_path: Path) -> None:
    src, dst = tmp_path / "staging", tmp_path / "inv"
    (src / "out").mkdir(parents=True)
    dst.mkdir()
    (dst / "invocation.json").write_text('{"key": "k"}')
    (src / "invocation.json").write_text('{"deps": {"x": {"alias": "../../etc", "key": ""}}}')
    for name in ("outputs.json", "failure.json", ".outputs.done.json"):
        (src / name).mkdir()
    (src / ".lock").write_text("forged")
    (src / "out/coeffs.json").write_text("[1]")
    (src / ".inside.json").write_text("{}")
    sealed._copy_back(src, dst)
    assert (dst / "invocation.json").read_text() == '{"key": "k"}'
    assert sorted(os.listdir(dst)) == [".inside.json", "invocation.json", "out"]
    assert (dst / "out/coeffs.json").read_text() == "[1]"
