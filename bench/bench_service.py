"""Submission service intake benchmark (printed figures, not a test).

Run: PYTHONPATH=src .venv/bin/python bench/bench_service.py [--uploads N] [--reps R]

A real `efflab tournament serve` process on 127.0.0.1 (`--no-local-worker`: verification
is a sealed Docker run of seconds per entry and is measured elsewhere; this measures the
service), the tiny tournament keyed, 100 participants registered through the organiser
API. At 1, 10 and 100 concurrent clients (threads, one keep-alive connection each, the
participant's client code: fresh nonce, Ed25519 signature, streamed multipart):

- accepted uploads/s (202 answers per second of wall time),
- upload latency p50/p99, and GET status / GET leaderboard latency p50/p99 under the
  same concurrency,
- the server's resident memory (VmRSS) after each level, and its peak (VmHWM).

Levels are interleaved across repetitions; each figure is the median over reps with
[min-max]. The clients run on the same machine as the server (and, here, beside other
engineers' work), so figures are a floor, not a capacity plan.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "tournaments")]

import httpx  # noqa: E402
from conftest import make_tiny_repo  # noqa: E402
from service_helpers import Server  # noqa: E402
from tournament_tiny import add_tiny_tournament, submission  # noqa: E402

from efflab.tournaments.service import client  # noqa: E402

LEVELS = (1, 10, 100)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def mem_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            k, v = line.split(":")
            out[k] = int(v.split()[0])
    return out


def level(s: Server, files: list[Path], keys: Path, conc: int, uploads: int, rep: int) -> dict[str, float]:  # fmt: skip
    per = max(1, uploads // conc)
    up_lat: list[float] = []
    get_lat: list[float] = []
    board_lat: list[float] = []
    ok = [0]
    lock = threading.Lock()
    sids: list[str] = []

    def worker(i: int) -> None:
        who = f"p{i % 100}"
        f = files[i % 100]
        with httpx.Client(base_url=s.url, timeout=120) as c:
            for j in range(per):
                parts = client.prepare("tiny", f, None, keys / who)
                boundary = f"b{rep}x{i}x{j}"
                body, total = client._multipart(parts, boundary, lambda a, b: None)
                t0 = time.perf_counter()
                r = c.post("/api/v1/tournaments/tiny/submissions", content=b"".join(body),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
                dt = time.perf_counter() - t0
                with lock:
                    up_lat.append(dt)
                    if r.status_code == 202:
                        ok[0] += 1
                        sids.append(r.json()["id"])
                sid = sids[-1] if sids else "x"
                t0 = time.perf_counter()
                c.get(f"/api/v1/submissions/{sid}")
                g = time.perf_counter() - t0
                t0 = time.perf_counter()
                if j % 5 == 0:
                    c.get("/api/v1/tournaments/tiny/leaderboard")
                    with lock:
                        board_lat.append(time.perf_counter() - t0)
                with lock:
                    get_lat.append(g)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    assert s.proc is not None
    m = mem_kb(s.proc.pid)
    return {
        "uploads_per_s": ok[0] / wall,
        "accepted": ok[0],
        "sent": len(up_lat),
        "upload_p50_ms": pct(up_lat, 0.5) * 1e3,
        "upload_p99_ms": pct(up_lat, 0.99) * 1e3,
        "status_p50_ms": pct(get_lat, 0.5) * 1e3,
        "status_p99_ms": pct(get_lat, 0.99) * 1e3,
        "board_p50_ms": pct(board_lat, 0.5) * 1e3,
        "board_p99_ms": pct(board_lat, 0.99) * 1e3,
        "rss_mb": m.get("VmRSS", 0) / 1024,
        "hwm_mb": m.get("VmHWM", 0) / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=200, help="uploads per level and repetition (default 200)")  # fmt: skip
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        repo = make_tiny_repo(root / "proj")
        add_tiny_tournament(repo, identity={"mode": "keys"}, submissions={"limit": 100000, "window_h": 24})  # fmt: skip
        s = Server(repo, root / "organiser", "--no-local-worker", "--queue-cap", "1000000", "--max-uploads", "128").start()  # fmt: skip
        try:
            keys = root / "keys"
            keys.mkdir()
            print("registering 100 participants ...", file=sys.stderr)
            for i in range(100):
                s.register(f"p{i}", keys / f"p{i}")
            files = [submission(root / "subs", f"e{i}", 3, participant=f"p{i}") for i in range(100)]
            results: dict[int, list[dict[str, float]]] = {c: [] for c in LEVELS}
            for rep in range(args.reps):
                order = LEVELS if rep % 2 == 0 else tuple(reversed(LEVELS))
                for c in order:
                    r = level(s, files, keys, c, args.uploads, rep)
                    results[c].append(r)
                    print(f"rep {rep} c={c}: {r['uploads_per_s']:.1f} uploads/s, upload p50 {r['upload_p50_ms']:.0f} ms", file=sys.stderr)  # fmt: skip
            print("\n| clients | accepted uploads/s | upload p50 / p99 ms | status GET p50 / p99 ms | leaderboard GET p50 / p99 ms | server RSS MB |")  # fmt: skip
            print("|---|---|---|---|---|---|")
            for c in LEVELS:
                rs = results[c]

                def f(k: str, nd: int = 0, rs: list = rs) -> str:
                    xs = [r[k] for r in rs]
                    return f"{statistics.median(xs):.{nd}f} [{min(xs):.{nd}f}–{max(xs):.{nd}f}]"

                print(f"| {c} | {f('uploads_per_s', 1)} | {f('upload_p50_ms')} / {f('upload_p99_ms')} | {f('status_p50_ms')} / {f('status_p99_ms')} | {f('board_p50_ms')} / {f('board_p99_ms')} | {f('rss_mb')} |")  # fmt: skip
            assert s.proc is not None
            print(f"\npeak server memory (VmHWM): {mem_kb(s.proc.pid).get('VmHWM', 0) / 1024:.0f} MB; uploads per level and rep: {args.uploads}; reps: {args.reps}")  # fmt: skip
        finally:
            s.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
