"""The README's runnable examples, extracted from README.md itself, and a fresh copy of
the repository to run them in, so the front door cannot drift from what works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def section_blocks(heading: str, readme: Path = REPO / "README.md") -> list[str]:
    """The ```sh blocks of the README section titled `heading`, in order."""
    text = readme.read_text()
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end > 0 else len(text)]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def fresh_clone(dest: Path) -> Path:
    """The working tree's tracked and unignored files, committed in a new repository:
    what `git clone` gives a new user (this checkout's uncommitted edits included)."""
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"]}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fresh clone"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, env=env, capture_output=True)
    return dest


def shell_env(clone: Path, **extra: str) -> dict[str, str]:
    """The user's shell after `. .venv/bin/activate` in the clone: `efflab` on PATH,
    importing the clone's own source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EFFLAB_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = str(clone / "src")
    env.update(extra)
    return env


def run_blocks(blocks: list[str], clone: Path, env: dict[str, str], timeout: float):
    script = "set -euo pipefail\n" + "\n".join(blocks)
    return subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
