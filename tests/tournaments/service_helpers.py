"""A real `efflab tournament serve` process on 127.0.0.1 for the service tests.

No mock anywhere: the server is the CLI in its own process (own session, so kill -9
reaches it alone), the uploads are the participant's client code (or raw bytes for
hostile ones), keys are registered through the organiser API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from efflab.tournaments import identity
from efflab.tournaments.service import client

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(organiser_dir: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "EFFLAB_SCRIPTS_PATH"}
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    e["EFFLAB_ORGANISER_DIR"] = str(organiser_dir)
    return e


class Server:
    def __init__(self, repo: Path, organiser_dir: Path, *extra: str):
        self.repo, self.organiser_dir, self.extra = repo, organiser_dir, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = repo.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> Server:
        cmd = [sys.executable, "-m", "efflab", "--repo", str(self.repo), "tournament", "serve",
               "--port", str(self.port), *self.extra]  # fmt: skip
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, env=env(self.organiser_dir), stdout=fh, stderr=fh, start_new_session=True)  # fmt: skip
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")  # fmt: skip
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the server did not answer in {timeout} s: {self.log.read_text()[-2000:]}")  # fmt: skip

    def tokens(self) -> dict[str, str]:
        return json.loads((self.repo / "results/tournaments/.service/tokens.json").read_text())

    def organiser(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens()['organiser']}"}

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/api/v1/health", timeout=10).json()

    def register(self, who: str, keyfile: Path) -> None:
        k = identity.generate(keyfile) if not keyfile.exists() else None
        pub = k.public_b64 if k else Path(f"{keyfile}.pub").read_text().strip()
        r = httpx.post(f"{self.url}/api/v1/tournaments/tiny/participants", json={"participant": who, "public_key": pub}, headers=self.organiser(), timeout=60)  # fmt: skip
        assert r.status_code == 201, r.text

    def upload(self, file: Path, key: Path | None, archive: Path | None = None) -> client.Answer:
        return client.upload(self.url, "tiny", client.prepare("tiny", file, archive, key))

    def wait(self, sid: str, limit_s: float = 600) -> dict:
        a = client.wait(self.url, sid, lambda b: None, poll_s=0.5, limit_s=limit_s)
        assert a.status == 200, a.body
        return a.body
