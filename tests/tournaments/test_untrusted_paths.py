"""Issue #20 item 1: submissions never get a host file into results/ (no Docker needed).

A planted secret file sits outside the submission's folder. Symlinked submission files,
`archive:` paths with `..`, absolute paths, `/`, links inside a folder archive and an
oversized folder are each rejected and recorded; the secret's content appears nowhere
under results/, and an oversized folder is refused before anything is copied.
`attempt` is the real flow after the sandbox preflight (which needs an engine), and
every case here is refused before a container would start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tournament_tiny import add_tiny_tournament

from efflab.tournaments.ledger import attempts_only, verify
from efflab.tournaments.spec import load_tournament
from efflab.tournaments.submit import attempt

SECRET = "TOP-SECRET-7f3a9c-do-not-copy"


def _all_bytes(root: Path) -> bytes:
    out = b""
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out += p.read_bytes()
    return out


@pytest.fixture
def setup(tiny_repo: Path, tmp_path: Path):
    add_tiny_tournament(tiny_repo)
    secret_dir = tmp_path / "host"
    secret_dir.mkdir()
    (secret_dir / "shadow").write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    sub = tmp_path / "sub"  # the submission's folder
    sub.mkdir()
    return tiny_repo, load_tournament(tiny_repo, "tiny"), secret_dir, sub


def _entry(sub: Path, name: str, **fields) -> Path:
    f = sub / name
    f.write_text(json.dumps({"participant": "eve", "entry": name.split(".")[0], "inputs": {"degree": 3}, **fields}))  # fmt: skip
    return f


def test_hostile_paths_are_rejected_recorded_and_never_copied(setup) -> None:
    repo, t, secret_dir, sub = setup
    (sub / "link.yaml").symlink_to(secret_dir / "shadow")
    (sub / "evil-folder").mkdir()
    (sub / "evil-folder" / "run.py").write_text("def run(ctx):\n    return {}\n")
    (sub / "evil-folder" / "loot").symlink_to(secret_dir / "shadow")
    (sub / "linked-dir").symlink_to(secret_dir)
    big = sub / "big"
    big.mkdir()
    for i in range(3):
        (big / f"blob{i}").write_bytes(os.urandom(40_000))  # 120 kB > the 64 kB limit
    (big / "run.py").write_text("def run(ctx):\n    return {}\n")
    cases = {
        "symlinked submission file": (sub / "link.yaml", None, "symbolic link"),
        "archive ../": (_entry(sub, "dotdot.yaml", archive="../host/shadow"), None, "'..'"),
        "archive /": (_entry(sub, "root.yaml", archive="/"), None, "absolute path"),
        "archive /etc/passwd": (_entry(sub, "abs.yaml", archive="/etc/passwd"), None, "absolute"),
        "link inside a folder": (
            _entry(sub, "folder.yaml", archive="evil-folder"),
            None,
            "symbolic link",
        ),  # fmt: skip
        "link on the way": (
            _entry(sub, "via.yaml", archive="linked-dir/shadow"),
            None,
            "symbolic link",
        ),  # fmt: skip
        "oversized folder": (_entry(sub, "big.yaml", archive="big"), None, "limit"),
        "--archive symlink": (_entry(sub, "cli.yaml"), sub / "linked-dir", "symbolic link"),
    }
    for name, (f, arc, why) in cases.items():
        v = attempt(repo, t, f, arc)
        assert not v.accepted and v.stage in ("archive", "schema"), (name, v.stage, v.reason)
        assert why in v.reason, (name, v.reason)
        assert SECRET not in v.reason
        assert not (v.folder / "script.tar.gz").exists(), name  # nothing packed
        assert not (v.folder / "scripts").exists(), name
    ledger = verify(repo / "results/tournaments/tiny/ledger.jsonl")
    es = attempts_only(ledger.entries)  # after the organiser's genesis
    assert ledger.ok and len(es) == len(cases)  # every attempt has its line
    assert all(e["verdict"] == "rejected" for e in es)
    assert SECRET.encode() not in _all_bytes(repo / "results")
    assert b"19000:0:99999" not in _all_bytes(repo / "results")
    first = es[0]["submission"]
    assert first["file"] is None and first["sha256"] is None  # the link was never read


def test_a_host_file_named_directly_leaves_only_our_message(setup) -> None:
    """`submit T /etc/shadow`-like: a regular file that is no submission is not stored."""
    repo, t, secret_dir, _ = setup
    v = attempt(repo, t, secret_dir / "shadow")
    assert not v.accepted and v.stage == "schema"
    assert SECRET not in v.reason and "found something else" in v.reason
    assert v.entry["submission"]["file"] is None and v.entry["submission"]["sha256"]
    assert SECRET.encode() not in _all_bytes(repo / "results")


def test_fifo_and_oversized_submission_files_are_refused_before_reading(setup) -> None:
    repo, t, _, sub = setup
    os.mkfifo(sub / "pipe.yaml")
    v = attempt(repo, t, sub / "pipe.yaml")  # would hang if it were opened for reading
    assert v.stage == "schema" and "not a regular file" in v.reason
    (sub / "huge.yaml").write_text("participant: eve\n" + "#" * (1 << 20))
    v = attempt(repo, t, sub / "huge.yaml")
    assert v.stage == "archive" and "the limit is 65536" in v.reason


def test_a_folder_archive_inside_the_folder_is_packed_deterministically(setup) -> None:
    from efflab.tournaments.untrusted import archive_bytes, read_named

    _, _, _, sub = setup
    (sub / "mine").mkdir()
    (sub / "mine" / "run.py").write_text("def run(ctx):\n    return {}\n")
    a = archive_bytes(read_named(sub, "mine", 10, 10_000))
    os.utime(sub / "mine" / "run.py", (1, 1))
    assert archive_bytes(read_named(sub, "./mine/", 10, 10_000)) == a  # digests can be signed
