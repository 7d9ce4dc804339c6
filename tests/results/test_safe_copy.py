"""efflab.results.safe_copy: a foreign folder read without following anything in it.

Real files, real symbolic links (to /etc/passwd, to a folder), a real FIFO (a read that
would block forever) and a link swapped in after the listing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.results import safe_copy
from efflab.results.safe_copy import Budget, Limits


def tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "one.json").write_text("{}")
    (root / "a" / "b" / "two.png").write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    (root / "top.txt").write_text("hello")
    return root


def test_walk_lists_regular_files_and_copy_tree_keeps_what_is_asked(tmp_path: Path) -> None:
    src = tree(tmp_path / "src")
    assert safe_copy.walk(src) == ["a/b/two.png", "a/one.json", "top.txt"]
    budget = Budget(Limits())
    copied, left = safe_copy.copy_tree(src, tmp_path / "dst", budget, keep=safe_copy.is_image)
    assert copied == ["a/b/two.png"] and left == ["a/one.json", "top.txt"]
    assert (tmp_path / "dst/a/b/two.png").read_bytes().startswith(b"\x89PNG")
    assert budget.files == 3 and budget.bytes == 2 + 12 + 5


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc", "missing-target"])
def test_a_link_anywhere_is_refused_naming_it(tmp_path: Path, target: str) -> None:
    src = tree(tmp_path / "src")
    os.symlink(target, src / "a" / "b" / "passwd.txt")
    with pytest.raises(BadInput) as e:
        safe_copy.copy_tree(src, tmp_path / "dst")
    assert str(src / "a/b/passwd.txt") in str(e.value) and "symbolic link" in str(e.value)
    assert not (tmp_path / "dst").exists()  # walked (and refused) before a byte was copied


def test_a_fifo_or_device_is_refused_without_blocking(tmp_path: Path) -> None:
    src = tree(tmp_path / "src")
    os.mkfifo(src / "a" / "pipe.json")
    with pytest.raises(BadInput, match="FIFO"):
        safe_copy.walk(src)
    os.unlink(src / "a" / "pipe.json")
    if os.path.exists("/dev/null"):
        with pytest.raises(BadInput, match="character device"):
            safe_copy.read(Path("/dev"), "null")


def test_a_link_swapped_in_after_the_listing_is_not_followed(tmp_path: Path) -> None:
    src = tree(tmp_path / "src")
    files = safe_copy.walk(src)
    (src / "top.txt").unlink()
    os.symlink("/etc/passwd", src / "top.txt")
    with pytest.raises(BadInput, match="symbolic link"):
        safe_copy.read(src, files[-1])
    # a folder on the way swapped for a link: refused too
    os.rename(src / "a", src / "a.real")
    os.symlink(src / "a.real", src / "a")
    with pytest.raises(BadInput, match="symbolic link"):
        safe_copy.read(src, "a/one.json")


def test_caps_on_files_bytes_and_one_file(tmp_path: Path) -> None:
    src = tree(tmp_path / "src")
    with pytest.raises(BadInput, match="at most 2 files"):
        safe_copy.copy_tree(src, tmp_path / "d1", Budget(Limits(max_files=2)))
    with pytest.raises(BadInput, match="at most 10 bytes in one import"):
        safe_copy.copy_tree(src, tmp_path / "d2", Budget(Limits(max_bytes=10)))
    with pytest.raises(BadInput, match="at most 4 bytes"):
        safe_copy.read(src, "top.txt", Budget(Limits(max_file_bytes=4)))


def test_limits_from_the_environment_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFLAB_IMPORT_MAX_FILES", "7")
    assert Limits.from_env().max_files == 7
    assert Limits.from_env(max_files=3).max_files == 3
    monkeypatch.setenv("EFFLAB_IMPORT_MAX_FILES", "lots")
    with pytest.raises(BadInput, match="EFFLAB_IMPORT_MAX_FILES"):
        Limits.from_env()


def test_dotdot_and_images_by_content() -> None:
    with pytest.raises(BadInput, match="inside the imported folder"):
        safe_copy.read(Path("/tmp"), "../etc/passwd")
    assert safe_copy.is_image("p.png", b"\x89PNG\r\n\x1a\n...")
    assert not safe_copy.is_image("p.png", b"<html><script>alert(1)</script>")
    assert not safe_copy.is_image("p.svg", b"<svg onload='alert(1)'/>")


def test_a_tree_too_deep_or_with_too_many_folders_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    deep = src.joinpath(*["d"] * (safe_copy.MAX_DEPTH + 3))
    deep.mkdir(parents=True)
    (deep / "x.json").write_text("{}")
    with pytest.raises(BadInput, match="levels deep"):
        safe_copy.walk(src)  # no recursion error, one message
    many = tmp_path / "many"
    for i in range(5):
        (many / f"f{i}").mkdir(parents=True)
    with pytest.raises(BadInput, match="at most 3 folders"):
        safe_copy.walk(many, budget=Budget(Limits(max_files=3)))
