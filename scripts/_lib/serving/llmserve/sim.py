"""Discrete-event (simpy) simulation of a serving cluster at scales the CPU cannot run.

Why: policies (the engine's own scheduler classes), cluster shapes (colocated instances
or Splitwise prefill/decode pools with KV transfer) and power caps are compared on
thousands of requests in seconds. Only iteration *durations* come from a cost model;
batching decisions are identical to the real engine's.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from .costmodel import Cost
from .scheduler import Limits, PrefillFirst, Request, Scheduler, Work, apply, make_scheduler

SPLIT_RE = re.compile(r"^splitwise-([1-9][0-9]*)p([1-9][0-9]*)d$")
CostFn = Callable[[list[Work]], Cost]


class PrefillOnly(PrefillFirst):
    """Splitwise prompt pool: whole prompts batched up to max_prefill_tokens, no decodes."""

    name = "prefill-only"

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        return self._whole_prompts(waiting, running)


class DecodeOnly(Scheduler):
    """Splitwise token pool: continuous batching of already-prefilled requests."""

    name = "decode-only"

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        while waiting and self._can_admit(waiting[0], running):
            self._admit(waiting, running)
        return self._decodes(running)


@dataclass
class SimConfig:
    policy: str = "chunked-256"
    token_budget: int = 256
    instances: int = 1
    limits: Limits = field(default_factory=Limits)
    kv_bytes_per_token: float = 0.0
    link_bw: float = 25e9  # bytes/s between prefill and decode instances
    link_latency_s: float = 1e-4
    devices_per_instance: int = 1
    idle_w: float = 0.0


@dataclass
class Instance:
    """One model replica: its queue, scheduler and accounting."""

    sched: Scheduler
    waiting: deque[Request] = field(default_factory=deque)
    running: list[Request] = field(default_factory=list)
    busy_s: float = 0.0
    busy_j: float = 0.0  # per device
    iterations: int = 0
    wake: simpy.Event | None = None

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)


@dataclass
class SimResult:
    requests: list[Request]
    instances: list[Instance]
    span_s: float
    devices: int
    energy_j: float  # all devices, busy + idle over the span
    kv_transfers_s: float = 0.0


class Cluster:
    """Colocated replicas (one policy) or Splitwise prefill/decode pools."""

    def __init__(self, cfg: SimConfig, cost: CostFn) -> None:
        self.cfg, self.cost = cfg, cost
        self.env = simpy.Environment()
        m = SPLIT_RE.match(cfg.policy)
        if m:
            npf, ndec = int(m.group(1)), int(m.group(2))
            self.prefill = [Instance(PrefillOnly(cfg.limits)) for _ in range(npf)]
            self.decode = [Instance(DecodeOnly(cfg.limits)) for _ in range(ndec)]
            self.links = [simpy.Resource(self.env, 1) for _ in range(npf)]
        else:
            self.prefill = [
                Instance(make_scheduler(cfg.policy, cfg.token_budget, cfg.limits))
                for _ in range(cfg.instances)
            ]
            self.decode = []
        self.transfer_s = 0.0

    @property
    def all(self) -> list[Instance]:
        return self.prefill + self.decode

    @staticmethod
    def _push(inst: Instance, req: Request) -> None:
        inst.waiting.append(req)
        if inst.wake is not None and not inst.wake.triggered:
            inst.wake.succeed()

    @staticmethod
    def _least_loaded(pool: list[Instance]) -> Instance:
        return min(pool, key=lambda i: i.load)  # first on ties: deterministic

    def _arrivals(self, reqs: list[Request]):
        for r in sorted(reqs, key=lambda r: (r.arrival, r.rid)):
            yield self.env.timeout(max(0.0, r.arrival - self.env.now))
            self._push(self._least_loaded(self.prefill), r)

    def _handoff(self, idx: int, req: Request):
        """KV cache of a prefilled prompt goes over the link to the least-loaded decoder."""
        with self.links[idx].request() as slot:
            yield slot
            dt = (
                self.cfg.link_latency_s
                + req.prompt_len * self.cfg.kv_bytes_per_token / self.cfg.link_bw
            )
            self.transfer_s += dt
            yield self.env.timeout(dt)
        self._push(self._least_loaded(self.decode), req)

    def _serve(self, idx: int, inst: Instance, splits: bool):
        env = self.env
        while True:
            works = inst.sched.schedule(inst.waiting, inst.running)
            if not works:
                inst.wake = env.event()
                yield inst.wake
                inst.wake = None
                continue
            c = self.cost(works)
            yield env.timeout(c.seconds)
            inst.busy_s += c.seconds
            inst.busy_j += c.seconds * c.power_w
            inst.iterations += 1
            for r in apply(works, env.now):
                inst.running.remove(r)
                inst.sched.release(r)
            if splits:  # prompt pool: requests with their first token move on
                for w in works:
                    r = w.req
                    if not r.in_prefill and not r.done and r in inst.running:
                        inst.running.remove(r)
                        inst.sched.release(r)
                        env.process(self._handoff(idx, r))

    def run(self, reqs: list[Request]) -> SimResult:
        splits = bool(self.decode)
        for i, inst in enumerate(self.prefill):
            self.env.process(self._serve(i, inst, splits))
        for i, inst in enumerate(self.decode):
            self.env.process(self._serve(i, inst, False))
        self.env.process(self._arrivals(reqs))
        self.env.run()
        done = [r for r in reqs if r.finish is not None]
        if len(done) != len(reqs):
            raise RuntimeError(
                f"{len(reqs) - len(done)} requests never finished (KV capacity "
                "too small for a request?)"
            )
        t0 = min(r.arrival for r in reqs)
        span = max(r.finish for r in done) - t0  # type: ignore[type-var]
        dev = self.cfg.devices_per_instance
        energy = sum(
            i.busy_j * dev + self.cfg.idle_w * dev * max(0.0, span - i.busy_s) for i in self.all
        )
        return SimResult(reqs, self.all, span, dev * len(self.all), energy, self.transfer_s)


def simulate(reqs: list[Request], cfg: SimConfig, cost: CostFn) -> SimResult:
    """Simulate serving `reqs` (fresh Request objects: state is mutated)."""
    return Cluster(cfg, cost).run(reqs)
