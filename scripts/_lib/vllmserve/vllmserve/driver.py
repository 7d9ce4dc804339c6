"""Serve a seeded workload on vLLM's engine in one process and time every token.

Runs under vLLM's interpreter: `python -m vllmserve.driver JOB.json RESULT.json`.

Why in-process stepping (`LLMEngine.step()` with `VLLM_ENABLE_V1_MULTIPROCESSING=0` and
the `uni` executor) rather than the OpenAI server: one `step()` is one engine iteration
(schedule + model forward + sampling), so a token's time is taken the moment its
iteration returns, with no HTTP/SSE or IPC hop between the engine and the clock; the
scheduler is vLLM's own, unchanged. It also starts in ~15 s against ~60 s for the server.
Requests arrive in real time (open loop): each is added when the wall clock passes its
planned arrival, and its latencies count from that planned time, so a late loop shows as
latency, never hides it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# before torch/vLLM load: one unpinned OpenMP thread (pinning beside other work was
# 7-10x slower in the feasibility runs), the engine core in this process
_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def policy_config(policy: str, max_model_len: int) -> dict[str, Any]:
    """efflab's scheduler names -> vLLM's scheduler knobs.

    `whole-prompt`: chunked prefill off and a token budget of max_model_len, so every
    waiting prompt is prefilled whole in one iteration, stalling the running decodes
    (Orca / vLLM-v0 style). `chunked-N`: Sarathi-Serve's stall-free batching as vLLM
    ships it: chunked prefill on, N tokens per iteration, decodes scheduled first.
    """
    if policy == "whole-prompt":
        return {"enable_chunked_prefill": False, "max_num_batched_tokens": max_model_len}
    if policy.startswith("chunked-"):
        return {"enable_chunked_prefill": True, "max_num_batched_tokens": int(policy[8:])}
    raise ValueError(f"unknown policy {policy!r} (expected whole-prompt or chunked-N)")


def prompt_ids(rid: int, n: int, vocab: int, seed: int) -> list[int]:
    """Seeded token ids (the same prompt for a request id in every run and policy)."""
    import random

    rng = random.Random(seed * 1_000_003 + rid)
    return [rng.randrange(1, vocab) for _ in range(n)]


class _SchedulerTap:
    """Records what vLLM's scheduler put in each iteration (tokens per request).

    Wraps the scheduler instance's `schedule` (the engine itself is untouched). A
    request's scheduled tokens are prefill while its computed tokens (read from vLLM's
    own request state just before scheduling, so a recompute preemption counts again)
    are short of its prompt, decode after.
    """

    def __init__(self, engine: Any):
        self.last: list[tuple[int, int]] = []  # (prefill, decode) per scheduled request
        self.preempted = 0
        try:
            sched = engine.engine_core.engine_core.scheduler
        except AttributeError:  # another vLLM layout: iterations lose the token split
            return
        orig = sched.schedule

        def schedule(*a: Any, **kw: Any) -> Any:
            before = {
                rid: (int(r.num_prompt_tokens), int(r.num_computed_tokens))
                for rid, r in sched.requests.items()
            }
            out = orig(*a, **kw)
            self.last = []
            for rid, n in out.num_scheduled_tokens.items():
                prompt, done = before.get(rid, (0, 0))
                p = min(n, max(prompt - done, 0))
                self.last.append((p, n - p))
            self.preempted += len(getattr(out, "preempted_req_ids", None) or ())
            return out

        sched.schedule = schedule

    def split(self) -> tuple[int, int, int]:
        """(prefill tokens, decode tokens, sequences) of the iteration just run."""
        return sum(p for p, _ in self.last), sum(d for _, d in self.last), len(self.last)


class VllmEngine:
    """One vLLM engine in this process, stepped by the caller; every step timed."""

    def __init__(self, job: dict[str, Any]):
        for k, v in _ENV.items():
            os.environ.setdefault(k, v)
        # a sealed container's root and $HOME are read-only: vLLM's caches go to the tmpfs
        os.environ.setdefault(
            "VLLM_CACHE_ROOT", os.path.join(tempfile.gettempdir(), f"vllm-cache-{os.getuid()}")
        )
        self.threads = int(job.get("threads", 1))
        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        self.started_at = time.time()
        t0 = time.perf_counter()
        import torch
        import vllm
        from vllm import EngineArgs, SamplingParams
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.llm_engine import LLMEngine

        torch.set_num_threads(self.threads)
        t_import = time.perf_counter() - t0
        self.job = job
        self.mml = int(job["max_model_len"])
        args = EngineArgs(
            model=job["model"],
            skip_tokenizer_init=True,
            dtype=job["dtype"],
            max_model_len=self.mml,
            max_num_seqs=int(job["max_num_seqs"]),
            distributed_executor_backend="uni",
            # eager: torch.compile of the CPU graph costs more start-up than it saves here
            enforce_eager=True,
            enable_prefix_caching=False,  # same prompts across runs must cost the same
            seed=int(job.get("seed", 0)),
            # the KV cache's size, exactly (VLLM_CPU_KVCACHE_SPACE takes whole GiB only)
            kv_cache_memory_bytes=int(float(job.get("kv_cache_gib", 1)) * 2**30),
            disable_log_stats=False,  # per-request engine timestamps (RequestOutput.metrics)
            **policy_config(job["policy"], self.mml),
        )
        t1 = time.perf_counter()
        self.engine = LLMEngine.from_engine_args(args)
        self.startup = {"import_s": t_import, "engine_s": time.perf_counter() - t1}
        self.versions = {"vllm_version": vllm.__version__, "torch_version": torch.__version__}
        self.vocab, self.seed = int(job["vocab"]), int(job.get("seed", 0))
        self._sp, self._kind = SamplingParams, RequestOutputKind.DELTA
        self.jobs = 0  # jobs begun on this engine (a pooled engine serves many)
        self.tag = ""
        self.tap = _SchedulerTap(self.engine)
        self.iterations: list[dict[str, Any]] = []

    def begin_job(self) -> None:
        """Put the engine in the state every job starts from, fresh engine or reused.

        No request left over, prefix cache emptied (it is off; reset anyway), request ids
        of this job prefixed with its number so none repeats an earlier job's, then the
        same unmeasured warm-up right before every job (first kernels, allocator, one
        prefill + decodes), so a pooled engine's first job and its later ones start alike.
        """
        if self.engine.has_unfinished_requests():
            raise RuntimeError("engine has unfinished requests from an earlier job")
        self.engine.reset_prefix_cache()
        self.tag = f"j{self.jobs}-"
        self.jobs += 1
        self.add("warmup", -1, 64, 4)
        while self.engine.has_unfinished_requests():
            self.engine.step()
        self.tap.last, self.tap.preempted = [], 0
        self.iterations = []

    def add(
        self, rid: str, seed_id: int, prompt_len: int, output_len: int, arrival: float | None = None
    ) -> None:
        params = self._sp(
            max_tokens=output_len,
            min_tokens=output_len,  # fixed output lengths: the workload decides them, not EOS
            ignore_eos=True,
            temperature=0.0,
            detokenize=False,
            output_kind=self._kind,
        )
        prompt = {"prompt_token_ids": prompt_ids(seed_id, prompt_len, self.vocab, self.seed)}
        self.engine.add_request(self.tag + rid, prompt, params, arrival_time=arrival)

    def local_id(self, request_id: str) -> str:
        """The caller's id of one of this job's requests (engine ids carry the job tag)."""
        return request_id[len(self.tag) :] if request_id.startswith(self.tag) else ""

    def busy(self) -> bool:
        return self.engine.has_unfinished_requests()

    def step(self, start: float) -> tuple[float, list[Any]]:
        """One engine iteration; returns its end (seconds since `start`) and its outputs."""
        s, c = time.perf_counter(), time.thread_time()
        outs = self.engine.step()
        e, ce = time.perf_counter(), time.thread_time()
        pf, dec, nseq = self.tap.split()
        self.iterations.append(
            {
                "start_s": s - start,
                "seconds": e - s,
                "cpu_seconds": ce - c,
                "prefill_tokens": pf,
                "decode_tokens": dec,
                "n_seqs": nseq,
            }
        )
        return e - start, outs

    def report(self) -> dict[str, Any]:
        """What every driver mode returns besides its requests."""
        return {
            **self.versions,
            "startup": self.startup,
            "iterations": self.iterations,
            "preempted": self.tap.preempted,
            # the engine process's peak since it started (a pooled engine: over all its jobs)
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "engine_pool": {
                "engine_pid": os.getpid(),
                "engine_started_at": self.started_at,
                "engine_jobs_before": self.jobs - 1,
                "engine_reused": self.jobs > 1,
            },
            "engine": {
                "dtype": self.job["dtype"],
                "max_model_len": self.mml,
                "max_num_seqs": int(self.job["max_num_seqs"]),
                **policy_config(self.job["policy"], self.mml),
                "threads": self.threads,
                "kv_cache_gib": self.job.get("kv_cache_gib", 1),
                "enforce_eager": True,
                "preemption": "recompute (the only mode of vLLM's V1 scheduler)",
            },
        }


def engine_stats(o: Any) -> dict[str, float] | None:
    """vLLM's own per-request timestamps (RequestStateStats) of a finished output."""
    m = o.metrics
    if m is None:
        return None
    keys = ("queued_ts", "scheduled_ts", "first_token_ts", "last_token_ts", "first_token_latency")
    out: dict[str, float] = {k: float(getattr(m, k, 0.0) or 0.0) for k in keys}
    out["num_preemptions"] = int(getattr(m, "num_preemptions", 0) or 0)
    return out


def serve(job: dict[str, Any], eng: VllmEngine | None = None) -> dict[str, Any]:
    """Serve the job's requests open-loop; on `eng` (a pooled engine, job begun) or a new one."""
    eng = eng or VllmEngine(job)
    eng.begin_job()
    reqs = sorted(job["requests"], key=lambda r: r["arrival"])
    state = {
        str(r["rid"]): {"rid": r["rid"], "arrival": r["arrival"], "token_times": [], "finish": None}
        for r in reqs
    }
    pending = list(reqs)
    start = time.perf_counter()
    wall0 = time.time()
    while pending or eng.busy():
        now = time.perf_counter() - start
        while pending and pending[0]["arrival"] <= now:
            r = pending.pop(0)
            rid = int(r["rid"])
            eng.add(str(rid), rid, int(r["prompt_len"]), int(r["output_len"]), wall0 + r["arrival"])
        if not eng.busy():
            time.sleep(max(0.0, min(pending[0]["arrival"] - now, 0.05)))
            continue
        end, outs = eng.step(start)
        for o in outs:
            st = state.get(eng.local_id(o.request_id))
            if st is None:
                continue
            st["token_times"].extend([end] * sum(len(c.token_ids) for c in o.outputs))
            if o.finished:
                st["finish"] = end
                stats = engine_stats(o)
                if stats:
                    st["vllm"] = stats
    return {**eng.report(), "requests": list(state.values())}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    result = serve(job)
    tmp = Path(argv[1]).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
