"""A collection is someone else's code (issue #31): inspection never runs it, and it runs
outside a container only once the project trusts it, as recorded in collections.yaml.

The collection is a real git repository whose check.py leaves a marker file the moment
it is imported (module level) and when its check runs; each command is the real CLI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import efflab, write

EXPERIMENT = """\
name: evil-exp
script: evil
inputs: {}
grid:
  k: [1, 2]
metrics: [twice]
"""


def hostile_collection(tmp: Path, marker: Path, include: str | None = None) -> Path:
    src = tmp / "labscripts"
    inc = f"include: ['{include}']\n        " if include else ""
    write(
        src / "scripts/evil/meta.yaml",
        f"""\
        alias: evil
        uid: 00000000000000e1
        tags: [lab, evil]
        description: looks harmless
        version: "1"
        run: run.py
        requires:
          tools:
            - {{name: sh, version_args: ["-c", "echo doctor ran it > {marker}"]}}
        {inc}inputs:
          k: {{type: integer, default: 2}}
        outputs:
          metrics:
            twice: {{unit: "1", better: higher}}
        """,
    )
    write(src / "scripts/evil/run.py", "def run(ctx):\n    return {'metrics': {'twice': 2 * ctx.inputs['k']}}\n")  # fmt: skip
    write(
        src / "scripts/evil/check.py",
        f"""\
        from pathlib import Path
        Path({str(marker)!r}).write_text("imported on the host\\n")

        def check(inputs):
            Path({str(marker)!r}).write_text("check ran on the host\\n")
            return []
        """,
    )
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):  # fmt: skip
        subprocess.run(["git", *cmd], cwd=src, check=True)
    return src


def one_line_error(proc: subprocess.CompletedProcess, *parts: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]  # progress aside
    assert len(errors) == 1, proc.stderr
    for p in parts:
        assert p in errors[0], (p, errors[0])
    return errors[0]


def recorded(repo: Path) -> list[dict]:
    return yaml.safe_load((repo / "workflows/collections.yaml").read_text())["collections"]


def test_inspection_never_imports_a_collections_code(tiny_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = hostile_collection(tmp_path, marker)
    assert efflab(tiny_repo, "repo", "add", str(src)).returncode == 0
    assert recorded(tiny_repo)[0].get("trusted") is None  # not trusted unless asked
    write(tiny_repo / "workflows/experiments/evil-exp.yaml", EXPERIMENT)
    for args in (
        ("repo", "list"),
        ("script", "list"),
        ("script", "show", "evil"),
        ("script", "show", "evil", "--json"),
        ("plan", "evil-exp"),
        ("plan", "evil-exp", "--json"),
        ("explain", "evil-exp"),
        ("doctor",),  # would run its declared tool `sh -c ...` to read a version
    ):
        r = efflab(tiny_repo, *args)
        assert r.returncode in ((0, 1) if args == ("doctor",) else (0,)), (args, r.stderr)
        assert not marker.exists(), args
    # running it on the host is refused before anything runs; the message says how
    r = efflab(tiny_repo, "script", "run", "evil", "--runtime", "host")
    one_line_error(
        r, "collections.yaml", "$.collections.labscripts.trusted", "repo trust labscripts"
    )
    r = efflab(tiny_repo, "run", "evil-exp", "--runtime", "host")
    one_line_error(r, "--runtime host")
    assert not marker.exists() and not (tiny_repo / "artifacts/evil").exists()
    # trusted: recorded first, then it may run on the host (check.py included) ...
    assert efflab(tiny_repo, "repo", "trust", "labscripts").returncode == 0
    assert recorded(tiny_repo)[0]["trusted"] is True
    assert efflab(tiny_repo, "script", "show", "evil").returncode == 0
    assert not marker.exists()  # ... but inspecting still never imports it
    efflab(tiny_repo, "doctor")  # trusted: its declared tool is run (the control)
    assert marker.read_text() == "doctor ran it\n"
    marker.unlink()
    r = efflab(tiny_repo, "script", "run", "evil", "--set", "k=4", "--runtime", "host", "--json")
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "check ran on the host\n"
    assert efflab(tiny_repo, "repo", "distrust", "labscripts").returncode == 0
    assert recorded(tiny_repo)[0].get("trusted") is None


def test_add_trust_is_recorded_with_the_collection(tiny_repo: Path, tmp_path: Path) -> None:
    src = hostile_collection(tmp_path, tmp_path / "pwned")
    r = efflab(tiny_repo, "repo", "add", str(src), "--trust")
    assert r.returncode == 0, r.stderr
    assert recorded(tiny_repo)[0]["trusted"] is True
    assert not (tmp_path / "pwned").exists()  # adding runs nothing of it


@pytest.mark.parametrize(
    "source",
    ["ext::sh -c touch% {marker}", "ext::sh -c 'touch {marker}'", "fd::17",
     "--upload-pack=touch {marker}", "-u touch {marker}", "https://x y/{marker}"],
)  # fmt: skip
def test_repo_add_refuses_transports_that_run_commands(
    tiny_repo: Path, tmp_path: Path, source: str
) -> None:
    marker = tmp_path / "pwned"
    r = efflab(tiny_repo, "repo", "add", source.format(marker=marker))
    one_line_error(r, "a folder or a git URL")
    assert not marker.exists()
    assert not (tiny_repo / "workflows/collections.yaml").exists()


def test_an_include_outside_the_collection_is_refused(tiny_repo: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "home/.ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("PRIVATE KEY")
    src = hostile_collection(tmp_path, tmp_path / "pwned", include=str(secrets))
    r = efflab(tiny_repo, "repo", "add", str(src))  # would mount ~/.ssh into its container
    one_line_error(r, "$.include[0]", "inside its collection")
    assert recorded(tiny_repo) == []


def test_a_forged_collections_file_is_exit_2(tiny_repo: Path) -> None:
    f = tiny_repo / "workflows/collections.yaml"
    write(f, "collections:\n  - {name: x, source: /tmp, trusted: 'yes'}\n")
    one_line_error(efflab(tiny_repo, "script", "list"), "$.collections[0].trusted")
    write(f, "collections:\n  - {name: x, source: /tmp, subdir: ../../etc}\n")
    one_line_error(efflab(tiny_repo, "script", "list"), "$.collections[0].subdir")


@pytest.mark.parametrize("target", ["/dev/zero", "{secret}"])
def test_a_link_out_of_the_collection_is_refused(
    tiny_repo: Path, tmp_path: Path, target: str
) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    src = hostile_collection(tmp_path, tmp_path / "pwned")
    (src / "scripts/evil/data.bin").symlink_to(target.format(secret=secret))
    for cmd in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "link"]):  # fmt: skip
        subprocess.run(["git", *cmd], cwd=src, check=True)
    r = efflab(tiny_repo, "repo", "add", str(src), timeout=60)  # /dev/zero: never read
    one_line_error(r, "data.bin", "inside its collection")
    assert recorded(tiny_repo) == []
