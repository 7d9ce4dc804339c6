"""`efflab results import`: merging another machine's results by key and host.

Real runs of the tiny demo experiment (conftest.tiny_repo). The second machine is
this one under another hostname (a UTS namespace, `unshare -u`), so its records carry
another host, as a second lab's would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import efflab, make_tiny_repo


def run_as(repo: Path, hostname: str, *args: str) -> subprocess.CompletedProcess:
    import os
    import sys

    cmd = [sys.executable, "-m", "efflab", "--repo", str(repo), *args]
    cmd = ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=600)


needs_unshare = pytest.mark.skipif(
    subprocess.run(["unshare", "-u", "true"], capture_output=True).returncode != 0,
    reason="unshare -u (a UTS namespace for a second hostname) needs root",
)


@needs_unshare
@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_import_merges_by_key_and_host_never_overwrites(tmp_path: Path) -> None:
    a = make_tiny_repo(tmp_path / "a")
    b = make_tiny_repo(tmp_path / "b")
    efflab(a, "run", "demo", "--quick", "--runtime", "host", check=True)
    r = run_as(b, "lab-b", "run", "demo", "--quick", "--runtime", "host")
    assert r.returncode == 0, r.stderr
    theirs = sorted((b / "results/demo/runs").glob("*.json"))
    ours_before = sorted(p.name for p in (a / "results/demo/runs").glob("*.json"))
    # the same code and inputs on both machines: the same keys
    assert {p.name for p in theirs} == set(ours_before)

    res = efflab(a, "results", "import", str(b / "results"), "--json", check=True)
    info = json.loads(res.stdout)
    assert info["hosts"] == ["lab-b"] and info["records_added"] == len(theirs)
    assert info["tables_added"] == 1
    merged = a / "results/demo/hosts/lab-b"
    assert sorted(p.name for p in (merged / "runs").glob("*.json")) == [p.name for p in theirs]
    assert (merged / "tables/v1/manifest.json").is_file()
    assert sorted(p.name for p in (a / "results/demo/runs").glob("*.json")) == ours_before

    again = json.loads(efflab(a, "results", "import", str(b), "--json", check=True).stdout)
    assert again["records_added"] == 0 and again["records_unchanged"] == len(theirs)
    assert again["tables_unchanged"] == 1

    site = efflab(a, "site", "build", "--json", check=True)
    built = json.loads(site.stdout)
    assert built["counts"]["machines"] == 2 and not built["skipped"]
    page = (a / "results/site/machines.html").read_text()
    assert "lab-b" in page


def test_conflicting_record_is_exit_2_naming_both_files(tmp_path: Path) -> None:
    a = make_tiny_repo(tmp_path / "a")
    efflab(a, "run", "demo", "--quick", "--runtime", "host", check=True)
    b = tmp_path / "b"
    shutil.copytree(a / "results", b / "results")
    # a copy of this machine's own records: imported beside them, marked, never as local
    info = json.loads(
        efflab(a, "results", "import", str(b / "results"), "--json", check=True).stdout
    )
    me = info["hosts"][0]
    local = sorted(p.name for p in (a / "results/demo/runs").glob("*.json"))
    landed = a / "results/demo/hosts" / me / "runs"
    assert sorted(p.name for p in landed.glob("*.json")) == local
    rec_file = sorted((b / "results/demo/runs").glob("*.json"))[0]
    rec = json.loads(rec_file.read_text())
    rec["metrics"]["sumsq"]["value"] += 1.0  # same key, same host, other content
    rec_file.write_text(json.dumps(rec))
    before = sorted(p.relative_to(a) for p in (a / "results").rglob("*"))
    r = efflab(a, "results", "import", str(b / "results"))
    assert r.returncode == 2, r.stdout + r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert str(rec_file) in line and str(landed / rec_file.name) in line
    assert sorted(p.relative_to(a) for p in (a / "results").rglob("*")) == before


def test_import_of_a_folder_that_is_not_results_is_exit_2(tmp_path: Path) -> None:
    a = make_tiny_repo(tmp_path / "a")
    junk = tmp_path / "junk"
    (junk / "photos").mkdir(parents=True)
    (junk / "notes.txt").write_text("hello")
    r = efflab(a, "results", "import", str(junk))
    assert r.returncode == 2 and str(junk) in r.stderr and "efflab results folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = efflab(a, "results", "import", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such folder" in r.stderr
    # a record that is not JSON: exit 2 naming it
    (junk / "demo/runs").mkdir(parents=True)
    (junk / "demo/runs/0123456789abcdef0123.json").write_text("{oops")
    r = efflab(a, "results", "import", str(junk))
    assert r.returncode == 2 and "0123456789abcdef0123.json" in r.stderr
    assert not (a / "results/demo/hosts").exists()
