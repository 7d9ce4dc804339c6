"""Iteration-level scheduling policies, shared by the real engine and the simulator.

Why shared: the simulator is only credible if it schedules exactly like the engine; the
policies below see request *state* only (tokens done), never the model, so both the
PyTorch engine and the simpy simulator call the same code and differ only in how long
an iteration takes.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

POLICY_RE = re.compile(r"^(prefill-first|decode-first|chunked(?:-([1-9][0-9]*))?)$")


@dataclass
class Request:
    """One inference request; times are seconds on the engine's (or simulator's) clock."""

    rid: int
    arrival: float
    prompt_len: int
    output_len: int
    prefilled: int = 0  # prompt tokens already in the KV cache
    generated: int = 0  # output tokens produced so far
    token_times: list[float] = field(default_factory=list)
    finish: float | None = None

    @property
    def in_prefill(self) -> bool:
        return self.prefilled < self.prompt_len

    @property
    def done(self) -> bool:
        return self.generated >= self.output_len

    @property
    def kv_tokens(self) -> int:
        """KV slots reserved at admission (prompt + all outputs, no preemption)."""
        return self.prompt_len + self.output_len


@dataclass(frozen=True)
class Work:
    """Part of an iteration: `n` tokens of request `req` (a prefill chunk or one decode)."""

    req: Request
    n: int
    prefill: bool


@dataclass
class Limits:
    """Admission limits: running sequences and reserved KV tokens."""

    max_batch: int = 64
    kv_capacity: int = 1 << 40
    max_prefill_tokens: int = 4096  # vLLM's max_num_batched_tokens for prefill-only steps


class Scheduler:
    """Base policy: FCFS admission under `Limits`; subclasses choose the iteration mix."""

    name = "base"

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.kv_used = 0

    def _can_admit(self, req: Request, running: list[Request]) -> bool:
        lim = self.limits
        return len(running) < lim.max_batch and self.kv_used + req.kv_tokens <= lim.kv_capacity

    def _admit(self, waiting: deque[Request], running: list[Request]) -> Request:
        req = waiting.popleft()
        running.append(req)
        self.kv_used += req.kv_tokens
        return req

    def release(self, req: Request) -> None:
        """Free the KV reservation of a finished request."""
        self.kv_used -= req.kv_tokens

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        raise NotImplementedError

    def _whole_prompts(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        """Admit whole waiting prompts up to max_prefill_tokens (always at least one)."""
        works: list[Work] = []
        budget = self.limits.max_prefill_tokens
        while waiting and self._can_admit(waiting[0], running):
            if works and waiting[0].prompt_len > budget:
                break
            req = self._admit(waiting, running)
            works.append(Work(req, req.prompt_len, True))
            budget -= req.prompt_len
        return works

    @staticmethod
    def _decodes(running: list[Request]) -> list[Work]:
        return [Work(r, 1, False) for r in running if not r.in_prefill and not r.done]


class PrefillFirst(Scheduler):
    """Orca / vLLM-v0: whole waiting prompts run in prefill-only iterations ahead of decodes."""

    name = "prefill-first"

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        return self._whole_prompts(waiting, running) or self._decodes(running)


class DecodeFirst(Scheduler):
    """FasterTransformer-like: running decodes always go first; prompts wait for an
    iteration with no decode left (request-level batching)."""

    name = "decode-first"

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        return self._decodes(running) or self._whole_prompts(waiting, running)


class Chunked(Scheduler):
    """Sarathi-Serve stall-free batching: all running decodes plus prefill chunks up to a
    token budget. Running sequences are capped at the budget so decodes always fit."""

    name = "chunked"

    def __init__(self, budget: int, limits: Limits | None = None) -> None:
        if budget < 1:
            raise ValueError(f"token budget must be >= 1, got {budget}")
        super().__init__(limits)
        self.budget = budget

    def _can_admit(self, req: Request, running: list[Request]) -> bool:
        return len(running) < self.budget and super()._can_admit(req, running)

    def schedule(self, waiting: deque[Request], running: list[Request]) -> list[Work]:
        works = self._decodes(running)
        left = self.budget - len(works)
        for req in running:  # continue partially prefilled prompts first (FCFS)
            if left <= 0:
                break
            if req.in_prefill:
                n = min(left, req.prompt_len - req.prefilled)
                works.append(Work(req, n, True))
                left -= n
        while left > 0 and waiting and self._can_admit(waiting[0], running):
            req = self._admit(waiting, running)
            n = min(left, req.prompt_len)
            works.append(Work(req, n, True))
            left -= n
        return works


def parse_policy(policy: str, token_budget: int = 256) -> tuple[str, int | None]:
    """'chunked-128' -> ('chunked', 128); bare 'chunked' uses `token_budget`."""
    m = POLICY_RE.match(policy)
    if not m:
        raise ValueError(f"unknown policy {policy!r}")
    if m.group(1).startswith("chunked"):
        return "chunked", int(m.group(2)) if m.group(2) else token_budget
    return m.group(1), None


def make_scheduler(policy: str, token_budget: int = 256, limits: Limits | None = None) -> Scheduler:
    """Build a policy from its name (see `POLICY_RE`)."""
    kind, budget = parse_policy(policy, token_budget)
    if kind == "chunked":
        assert budget is not None
        return Chunked(budget, limits)
    return {"prefill-first": PrefillFirst, "decode-first": DecodeFirst}[kind](limits)


def apply(works: list[Work], now: float) -> list[Request]:
    """Advance request state after an iteration that ended at `now`.

    A prefill chunk that completes the prompt yields the first output token; each
    decode yields one more. Returns the requests that finished in this iteration.
    """
    finished = []
    for w in works:
        r = w.req
        if w.prefill:
            r.prefilled += w.n
            if r.in_prefill:
                continue
        r.generated += 1
        r.token_times.append(now)
        if r.done:
            r.finish = now
            finished.append(r)
    return finished


def features(works: list[Work]) -> dict[str, int]:
    """Token mix of an iteration, *before* `apply` advances the requests (the cost-model
    features shared by the engine's profile and the simulator)."""
    pf = [w for w in works if w.prefill]
    dec = [w for w in works if not w.prefill]
    return {
        "prefill_tokens": sum(w.n for w in pf),
        "decode_tokens": len(dec),
        "prefill_seqs": len(pf),
        "decode_ctx": sum(w.req.prompt_len + w.req.generated for w in dec),
        "prefill_ctx": sum(w.n * (w.req.prefilled + w.n) for w in pf),
    }
