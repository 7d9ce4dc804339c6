"""`efflab results import` of a hostile folder: every attack of issue #31 on real files.

Lab B is a real tiny project (conftest) that ran the demo experiment and reproduced a
paper (`squares`: real records, a real table version, a real report with plots). Each
test copies its results/, plants one attack in the copy (a real symbolic link, FIFO,
forged record or manifest, scripted HTML) and imports it into a fresh project A: the
attack is exit 2 naming the file with nothing written, or is imported harmlessly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
from conftest import efflab, make_tiny_repo, write

from efflab.results.importer import host_slug

sys.path.insert(0, str(Path(__file__).parents[1] / "papers"))
from test_reproduce import GOOD  # noqa: E402 - the squares paper spec

SCRIPT = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def lab_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = make_tiny_repo(tmp_path_factory.mktemp("lab") / "b")
    write(b / "workflows/papers/squares.yaml", GOOD)
    efflab(b, "reproduce", "squares", "--quick", "--runtime", "host", check=True)
    return b / "results"


@pytest.fixture
def src(lab_b: Path, tmp_path: Path) -> Path:
    out = tmp_path / "from-b" / "results"
    shutil.copytree(lab_b, out, symlinks=True)
    return out


@pytest.fixture
def a(tmp_path: Path) -> Path:
    return make_tiny_repo(tmp_path / "a")


def snapshot(repo: Path) -> list[str]:
    root = repo / "results"
    return sorted(str(p.relative_to(repo)) for p in root.rglob("*")) if root.exists() else []


def refused(a: Path, src: Path, *words: str, env: dict | None = None) -> str:
    before = snapshot(a)
    r = efflab(a, "results", "import", str(src), env=env, timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    assert snapshot(a) == before  # nothing written, no staging left behind
    return err


def first_record(src: Path) -> Path:
    return sorted((src / "demo/runs").glob("*.json"))[0]


def test_honest_import_marks_records_and_never_copies_report_html(a: Path, src: Path) -> None:
    local_host = socket.gethostname()
    r = efflab(a, "results", "import", str(src), "--json", check=True)
    info = json.loads(r.stdout)
    assert info["records_added"] == 4 and info["tables_added"] == 1 and info["reports_added"] == 1
    left = {Path(p).name for p in info["left_out"]}
    assert left == {"report.html", "report.md"}
    # lab B is this machine: its records claim our hostname, yet land apart and marked
    assert not (a / "results/demo/runs").exists()
    landed = sorted((a / "results/demo/hosts").glob("*/runs/*.json"))
    assert len(landed) == 4
    for f in landed:
        rec = json.loads(f.read_text())
        orig = src / "demo/runs" / f.name
        assert rec["provenance"]["imported"]["source"] == str(orig)
        assert (
            rec["provenance"]["imported"]["sha256"] == hashlib.sha256(orig.read_bytes()).hexdigest()
        )
        assert (
            rec["provenance"]["imported"]["claimed_host"] == rec["provenance"]["host"]["hostname"]
        )
        assert f.parent.parent.name == host_slug(rec["provenance"]["imported"]["claimed_host"])
    assert json.loads(landed[0].read_text())["provenance"]["imported"]["claimed_host"] == local_host
    rep = a / "results/reproductions/squares/1"
    assert sorted(p.name for p in rep.rglob("*") if p.is_file()) == [
        "grows-with-n.png", "imported.json", "scale-doubles.png", "verdicts.json"
    ]  # fmt: skip
    assert efflab(a, "results", "check", check=True).returncode == 0
    again = json.loads(efflab(a, "results", "import", str(src), "--json", check=True).stdout)
    assert again["records_unchanged"] == 4 and again["records_added"] == 0
    assert again["reports_unchanged"] == 1 and again["reports_added"] == 0


@pytest.mark.parametrize(
    "where",
    ["demo/runs/{rec}", "demo/tables/v1/passwd.txt", "reproductions/squares/1/plots/x.png",
     "reproductions/squares/1/plots", "demo", "reproductions/squares/1/verdicts.json"],
)  # fmt: skip
def test_a_symbolic_link_anywhere_is_exit_2_naming_it(a: Path, src: Path, where: str) -> None:
    target = src / where.format(rec=first_record(src).name)
    if target.exists():  # replace a real file or folder by a link to a host file
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    os.symlink("/etc" if where.endswith(("plots", "demo")) else "/etc/passwd", target)
    refused(a, src, str(target), "symbolic link")


def test_a_fifo_is_exit_2_and_never_blocks(a: Path, src: Path) -> None:
    fifo = src / "reproductions/squares/1/plots/blocking.png"
    os.mkfifo(fifo)
    refused(a, src, str(fifo), "FIFO")


def test_caps_on_files_and_bytes(a: Path, src: Path) -> None:
    refused(a, src, "at most 3 files", env={"EFFLAB_IMPORT_MAX_FILES": "3"})
    refused(a, src, "at most 1000 bytes", env={"EFFLAB_IMPORT_MAX_FILE_BYTES": "1000"})
    before = snapshot(a)
    r = efflab(a, "results", "import", str(src), "--max-bytes", "5000")
    assert r.returncode == 2 and "at most 5000 bytes in one import" in r.stderr
    assert snapshot(a) == before


def test_a_record_named_for_another_key_is_refused(a: Path, src: Path) -> None:
    f = first_record(src)
    forged = f.with_name("0123456789abcdef0123.json")
    f.rename(forged)
    refused(a, src, str(forged), "$.key", "0123456789abcdef0123")


def test_a_record_that_fails_the_schema_is_refused(a: Path, src: Path) -> None:
    f = first_record(src)
    rec = json.loads(f.read_text())
    rec["metrics"]["sumsq"]["value"] = "<script>"
    f.write_text(json.dumps(rec))
    refused(a, src, str(f), "$.metrics.sumsq.value")
    f.write_text("[" * 100_000 + "]" * 100_000)  # a nesting bomb
    refused(a, src, str(f), "nested less deeply")


def test_manifest_keys_5_and_verdicts_experiments_abc_are_exit_2(a: Path, src: Path) -> None:
    man = src / "demo/tables/v1/manifest.json"
    good = man.read_text()
    man.write_text(json.dumps({**json.loads(good), "keys": 5}))
    refused(a, src, str(man), "$.keys")
    man.write_text(json.dumps({**json.loads(good), "version": 7}))
    refused(a, src, str(man), "$.version")
    man.write_text(good)
    v = src / "reproductions/squares/1/verdicts.json"
    v.write_text(json.dumps({**json.loads(v.read_text()), "experiments": "abc"}))
    refused(a, src, str(v), "$.experiments")


def test_a_table_whose_parquet_is_not_a_table_is_refused(a: Path, src: Path) -> None:
    pq_file = src / "demo/tables/v1/table.parquet"
    pq_file.write_bytes(b"<html><script>alert(1)</script></html>")
    refused(a, src, str(pq_file), "Parquet")


def test_scripted_report_html_is_left_behind(a: Path, src: Path) -> None:
    rep = src / "reproductions/squares/1"
    (rep / "report.html").write_text(f"<html><body>{SCRIPT}</body></html>")
    (rep / "plots" / "evil.svg").write_text(
        f"<svg xmlns='http://www.w3.org/2000/svg'>{SCRIPT}</svg>"
    )
    (rep / "plots" / "fake.png").write_text(SCRIPT)  # HTML named .png
    info = json.loads(efflab(a, "results", "import", str(src), "--json", check=True).stdout)
    names = {Path(p).name for p in info["left_out"]}
    assert {"report.html", "evil.svg", "fake.png"} <= names
    landed = a / "results/reproductions/squares/1"
    for p in (p for p in landed.rglob("*") if p.is_file()):
        assert p.suffix not in (".html", ".svg", ".md") and b"<script" not in p.read_bytes()


def test_a_parquet_bomb_is_refused_from_its_footer(a: Path, src: Path) -> None:
    # the uncompressed size is read from the footer before anything is decompressed
    refused(a, src, "table.parquet", "uncompressed", env={"EFFLAB_MAX_TABLE_BYTES": "100"})


def test_results_check_names_a_bad_verdicts_file(a: Path, src: Path) -> None:
    efflab(a, "results", "import", str(src), check=True)
    v = a / "results/reproductions/squares/1/verdicts.json"
    v.write_text(json.dumps({**json.loads(v.read_text()), "experiments": "abc"}))
    r = efflab(a, "results", "check", "--json")
    assert r.returncode == 1
    (p,) = json.loads(r.stdout)["problems"]
    assert (
        p["file"] == "results/reproductions/squares/1/verdicts.json"
        and p["path"] == "$.experiments"
    )
    assert efflab(a, "results", "check", "--repair").returncode == 0
    assert not v.exists() and list(
        (a / "results/reproductions/squares/quarantine").rglob("verdicts.json")
    )


def test_a_published_repository_imports_and_its_links_are_refused(
    a: Path, lab_b: Path, tmp_path: Path
) -> None:
    pub = tmp_path / "published"
    efflab(lab_b.parent, "results", "publish", "demo", "--repo", str(pub), check=True)
    info = json.loads(efflab(a, "results", "import", str(pub), "--json", "--host", "lab-b").stdout)
    assert info["kind"] == "published" and info["tables_added"] == 1
    assert (a / "results/demo/hosts/lab-b/tables/v1/table.parquet").is_file()
    shutil.rmtree(a / "results")
    os.symlink("/etc/passwd", pub / "demo/v1/table.csv.bak")  # a link planted in the repo
    refused(a, pub, str(pub / "demo/v1/table.csv.bak"), "symbolic link")
