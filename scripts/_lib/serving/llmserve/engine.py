"""Continuous-batching serving engine on CPU (real PyTorch compute, wall-clock timing).

Why: scheduling trade-offs (TTFT vs TBT vs throughput) only show up when iterations take
real time while requests keep arriving. The engine runs iterations as long as there is
work, sleeps until the next arrival when idle, and records every iteration's mix and
duration so a cost model can be fitted to it.
"""

from __future__ import annotations

import csv
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .model import KVCache, ModelConfig, Segment, TinyDecoder
from .scheduler import Request, Scheduler, Work, apply, features


@dataclass
class Iteration:
    """One engine step: start/end seconds on the run clock and its token mix."""

    start: float
    end: float
    prefill_tokens: int
    decode_tokens: int
    n_seqs: int
    decode_ctx: int  # sum of context lengths attended by the decode tokens
    prefill_ctx: int  # sum over prefill chunks of n * (start + n): attention pairs x2
    cpu_seconds: float = 0.0  # thread CPU time: immune to preemption by other processes

    @property
    def seconds(self) -> float:
        return self.end - self.start


ITER_FIELDS = [
    "start_s",
    "seconds",
    "prefill_tokens",
    "decode_tokens",
    "n_seqs",
    "decode_ctx",
    "prefill_ctx",
    "cpu_seconds",
]


def write_iterations_csv(path: Path, its: list[Iteration]) -> None:
    """The per-iteration profile (input of the cost-model fit)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ITER_FIELDS)
        for it in its:
            w.writerow(
                [
                    f"{it.start:.6f}",
                    f"{it.seconds:.6f}",
                    it.prefill_tokens,
                    it.decode_tokens,
                    it.n_seqs,
                    it.decode_ctx,
                    it.prefill_ctx,
                    f"{it.cpu_seconds:.6f}",
                ]
            )


def read_iterations_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of an iterations CSV as float arrays."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ITER_FIELDS}


class Engine:
    """Runs a scheduler's iterations on a TinyDecoder with per-request KV caches."""

    def __init__(
        self, cfg: ModelConfig, scheduler: Scheduler, seed: int = 0, threads: int = 1
    ) -> None:
        torch.set_num_threads(threads)
        self.cfg = cfg
        self.model = TinyDecoder(cfg, seed)
        self.sched = scheduler
        self.seed = seed
        self.iterations: list[Iteration] = []
        self._caches: dict[int, KVCache] = {}
        self._tokens: dict[int, list[int]] = {}
        self.outputs: dict[int, list[int]] = {}  # rid -> generated token ids (greedy)
        self.on_first_token: Callable[[Request, float], None] | None = None
        self.on_finish: Callable[[Request, float], None] | None = None

    def _prompt(self, req: Request) -> list[int]:
        g = np.random.default_rng((self.seed, req.rid))
        return g.integers(0, self.cfg.vocab, size=req.prompt_len).tolist()

    def warmup(self, prompt_len: int = 64, iters: int = 3) -> None:
        """Untimed steps so allocator and kernels are warm before the clock starts."""
        for _i in range(iters):
            cache = self.model.new_cache(prompt_len + 1)
            toks = list(range(prompt_len))
            self.model.forward_segments([Segment(cache, 0, toks, True)])
            segs = [
                Segment(self.model.new_cache(prompt_len + 1), prompt_len, [1], True)
                for _ in range(8)
            ]
            self.model.forward_segments(segs)

    def step(self, works: list[Work]) -> None:
        """Execute one iteration on the model (the timed part)."""
        segs = []
        for w in works:
            r = w.req
            if r.rid not in self._caches:
                self._caches[r.rid] = self.model.new_cache(r.prompt_len + r.output_len)
                self._tokens[r.rid] = self._prompt(r)
            toks = self._tokens[r.rid]
            if w.prefill:
                chunk = toks[r.prefilled : r.prefilled + w.n]
                segs.append(
                    Segment(
                        self._caches[r.rid], r.prefilled, chunk, r.prefilled + w.n == r.prompt_len
                    )
                )
            else:
                pos = r.prompt_len + r.generated - 1
                segs.append(Segment(self._caches[r.rid], pos, [toks[-1]], True))
        nxt = iter(self.model.forward_segments(segs))
        for w, s in zip(works, segs, strict=True):
            if s.wants_logits:
                tok = next(nxt)
                self.outputs.setdefault(w.req.rid, []).append(tok)
                if w.req.generated + 1 < w.req.output_len:  # last token needs no slot
                    self._tokens[w.req.rid].append(tok)

    def _record(self, works: list[Work], start: float, end: float, cpu: float) -> None:
        f = features(works)
        self.iterations.append(
            Iteration(
                start,
                end,
                f["prefill_tokens"],
                f["decode_tokens"],
                len(works),
                f["decode_ctx"],
                f["prefill_ctx"],
                cpu,
            )
        )

    def _finish_step(self, works: list[Work], running: list[Request], now: float) -> None:
        firsts = [w.req for w in works if w.prefill and w.req.generated == 0]
        done = apply(works, now)
        if self.on_first_token:
            for r in firsts:
                if r.generated > 0:
                    self.on_first_token(r, now)
        for r in done:
            running.remove(r)
            self.sched.release(r)
            del self._caches[r.rid], self._tokens[r.rid]
            if self.on_finish:
                self.on_finish(r, now)

    def run(self, requests: list[Request]) -> list[Request]:
        """Serve an open-loop trace: arrivals at `req.arrival` seconds after the start."""
        pending = deque(sorted(requests, key=lambda r: r.arrival))
        waiting: deque[Request] = deque()
        running: list[Request] = []
        t0 = time.perf_counter()
        while pending or waiting or running:
            now = time.perf_counter() - t0
            while pending and pending[0].arrival <= now:
                waiting.append(pending.popleft())
            works = self.sched.schedule(waiting, running)
            if not works:
                if not pending:
                    raise RuntimeError("scheduler made no progress with work queued")
                time.sleep(max(0.0, pending[0].arrival - (time.perf_counter() - t0)))
                continue
            start, c0 = time.perf_counter() - t0, time.thread_time()
            self.step(works)
            end = time.perf_counter() - t0
            self._record(works, start, end, time.thread_time() - c0)
            self._finish_step(works, running, end)
        return requests

    def serve_queue(
        self, inbox: queue.Queue[Request | None], t0: float, stop: threading.Event
    ) -> None:
        """Serve requests pushed into `inbox` (arrival set by the producer, on the clock
        `time.perf_counter() - t0`) until `stop` is set and nothing is left."""
        waiting: deque[Request] = deque()
        running: list[Request] = []
        while True:
            block = not waiting and not running
            try:
                while True:
                    item = inbox.get(block=block, timeout=0.05 if block else None)
                    if item is not None:
                        waiting.append(item)
                    block = False
            except queue.Empty:
                pass
            if not waiting and not running:
                if stop.is_set() and inbox.empty():
                    return
                continue
            works = self.sched.schedule(waiting, running)
            if not works:
                raise RuntimeError("scheduler made no progress with work queued")
            start, c0 = time.perf_counter() - t0, time.thread_time()
            self.step(works)
            end = time.perf_counter() - t0
            self._record(works, start, end, time.thread_time() - c0)
            self._finish_step(works, running, end)
