"""Train a small decoder-only transformer LM on seeded synthetic tokens (PyTorch, CPU).

Why it exists: the training family asks how numeric precision (fp32 vs bf16 autocast)
and activation checkpointing trade throughput, memory and energy on a CPU.  Everything
that is not the training step itself (torch import, data generation, model build) is
kept out of the timed window, and memory is reported against a baseline taken right
before the model is built so that interpreter + torch overhead does not mask the
activation-memory effect of checkpointing.

Process isolation (decided here, see the training report): training runs in-process,
inside the fresh process the efflab runner forks for every invocation.  A fork already
gives the child its own high-water mark: Linux sets the child's ``VmHWM`` to its RSS at
fork time, not to the parent's historical peak (verified on this kernel).  On top of
that we reset ``VmHWM`` to the current RSS by writing ``5`` to ``/proc/self/clear_refs``
right after taking the baseline, so ``peak_rss_above_baseline_mb`` covers only model,
optimizer and training.  A private spawn/subprocess child was rejected: it would add
another interpreter + torch start (~2 s of a ~8 s budget) and would move the training
out of the process in which ``ctx.energy.measure()`` runs, so a per-process energy
estimate would silently see an idle parent.  ``peak_rss_mb`` is absolute and therefore
includes what the runner's process held at fork (~15 MB measured); ``rss_at_start_mb``
in ``values`` shows that part.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import resource
import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

try:  # The framework's exception makes a bad combination exit 2 with a clear message.
    from efflab.runtime.ctx import BadInput
except ImportError:  # pragma: no cover - only when efflab is not importable (direct use)

    class BadInput(ValueError):  # type: ignore[no-redef]
        """Stand-in with the framework's signature: (field, expected, found)."""

        def __init__(self, field: str, expected: str, found: object) -> None:
            super().__init__(f"{field}: expected {expected}, found {found!r}")
            self.field, self.expected, self.found = field, expected, found


MB = 1024.0  # /proc/self/status reports kB; metrics are MiB ("MB" as everywhere in efflab)
SUCCESSORS = 4  # each synthetic token has 4 likely successors: a learnable, non-trivial task


def _load_check(script_dir: Path) -> ModuleType:
    """Import the sibling ``check.py`` by path: the runner does not promise sys.path."""
    spec = importlib.util.spec_from_file_location("train_lm_check", script_dir / "check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status_kb(field: str) -> int | None:
    """Read one ``Vm*`` field of /proc/self/status in kB (None off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> tuple[int, str]:
    """Peak RSS in kB and how it was read; ru_maxrss cannot be reset, hence a fallback."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm, "proc-VmHWM"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "getrusage-ru_maxrss"


def _cpu_flags() -> set[str]:
    """CPU feature flags; bf16 speed depends on avx512_bf16 / amx_bf16 being present."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def build_model(cfg: dict[str, Any]) -> Any:
    """Pre-LN GPT-style model; SDPA with is_causal keeps attention memory O(T), not O(T^2)."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.checkpoint import checkpoint

    class Block(nn.Module):
        def __init__(self, d: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp_in, self.mlp_out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp_out(F.gelu(self.mlp_in(self.ln2(x))))

    class TinyLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d, v = cfg["d_model"], cfg["vocab_size"]
            self.tok, self.pos = nn.Embedding(v, d), nn.Embedding(cfg["seq_len"], d)
            self.blocks = nn.ModuleList(Block(d, cfg["heads"]) for _ in range(cfg["layers"]))
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, v, bias=False)
            self.head.weight = self.tok.weight  # tied, as in GPT-2: fewer weights, same task
            self.checkpointing = cfg["checkpointing"] == "on"
            for p in self.parameters():
                if p.dim() > 1:
                    nn.init.normal_(p, std=0.02)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
            for block in self.blocks:
                if self.checkpointing and self.training:
                    # Keep only each block's input; recompute its internals in backward.
                    x = checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            return self.head(self.ln_f(x))

    return TinyLM()


def synthetic_batches(cfg: dict[str, Any], seed: int) -> list[Any]:
    """Seeded Markov-chain tokens, generated up front so no step times data generation."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    v, b, t = cfg["vocab_size"], cfg["batch_size"], cfg["seq_len"]
    successors = torch.randint(v, (v, SUCCESSORS), generator=gen)
    batches = []
    for _ in range(cfg["steps"]):
        tokens = torch.empty(b, t + 1, dtype=torch.long)
        tokens[:, 0] = torch.randint(v, (b,), generator=gen)
        choice = torch.randint(SUCCESSORS, (b, t), generator=gen)
        for i in range(t):
            tokens[:, i + 1] = successors[tokens[:, i], choice[:, i]]
        batches.append(tokens)
    return batches


def _one_step(model: Any, opt: Any, tokens: Any, bf16: bool) -> float:
    """One optimizer step; the loss is computed in fp32 outside autocast, as bf16 recipes do."""
    import torch
    from torch.nn import functional as F

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(tokens[:, :-1])
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.item())


def _warm_kernels(cfg: dict[str, Any], tokens: Any) -> None:
    """Run one step of a tiny model with the same precision/checkpointing before the baseline.

    The first use of a kernel faults in code pages of libtorch/oneDNN and fills lazy
    caches (tens of MB of RSS, measured); without this they would count as "above
    baseline" and drown the activation-memory difference we want to see.
    """
    import torch

    tiny = dict(cfg, d_model=8 * cfg["heads"], layers=1, seq_len=min(16, cfg["seq_len"]))
    model = build_model(tiny)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    _one_step(model, opt, tokens[:1, : tiny["seq_len"] + 1], cfg["precision"] == "bf16")


def _saved_activation_bytes(model: Any, opt: Any, tokens: Any, bf16: bool) -> tuple[float, int]:
    """Run one step while summing the bytes autograd saves for backward (parameters excluded).

    Allocator-independent complement to peak RSS: it is exactly what checkpointing
    trades for recomputation.  Under non-reentrant checkpointing the saves inside a
    block go to checkpoint's own hooks (and are recomputed in backward); the block
    inputs it keeps still pass through these hooks and are counted (checked).
    """
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _one_step(model, opt, tokens, bf16)
    return loss, sum(storages.values())


def train(cfg: dict[str, Any], seed: int, energy: Any = None, log: Any = None) -> dict[str, Any]:
    """Run the training loop; ``energy`` is ``ctx.energy`` (None: no energy metric)."""
    import gc

    import torch
    import torch.utils.checkpoint  # noqa: F401  (imported before the baseline: ~70 MB of modules)

    torch.set_num_threads(cfg["threads"])
    try:
        torch.set_num_interop_threads(1)  # backward may use inter-op threads otherwise
    except RuntimeError:  # already set in this process (e.g. several calls in one test)
        pass
    batches = synthetic_batches(cfg, seed)
    bf16 = cfg["precision"] == "bf16"
    _warm_kernels(cfg, batches[0])
    gc.collect()
    torch.manual_seed(seed)

    baseline_kb = _status_kb("VmRSS") or 0
    hwm_reset = _reset_peak_rss()
    model = build_model(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    observed: list[str] = []
    hook = model.blocks[0].mlp_in.register_forward_hook(
        lambda m, i, o: observed.append(str(o.dtype))
    )

    warmup = cfg["warmup_steps"]
    losses: list[float] = []
    walls: list[float] = []
    cpus: list[float] = []
    saved_bytes = 0
    meter = None
    with contextlib.ExitStack() as stack:
        for i, tokens in enumerate(batches):
            if i == warmup and energy is not None:  # energy covers exactly the timed steps
                meter = stack.enter_context(energy.measure())
            t0, c0 = time.perf_counter(), time.process_time()
            if i == 0:
                loss, saved_bytes = _saved_activation_bytes(model, opt, tokens, bf16)
                hook.remove()  # the dtype seen in the first forward is all we need
            else:
                loss = _one_step(model, opt, tokens, bf16)
            if i >= warmup:  # first steps allocate and pick kernels: trained, not timed
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            losses.append(loss)
            if log is not None and (i + 1) % max(1, cfg["steps"] // 4) == 0:
                log.info(
                    "step %d/%d loss %.4f %.3fs",
                    i + 1,
                    cfg["steps"],
                    loss,
                    time.perf_counter() - t0,
                )
    joules = meter.joules if meter is not None else None
    energy_method = getattr(meter, "method", None)
    peak_kb, peak_method = _peak_rss_kb()
    return {
        "losses": losses,
        "step_times_s": walls,
        "step_cpu_times_s": cpus,
        "joules": joules,
        "energy_method": energy_method,
        "baseline_kb": baseline_kb,
        "peak_kb": peak_kb,
        "peak_method": peak_method,
        "hwm_reset": hwm_reset,
        "saved_activation_bytes": saved_bytes,
        "observed_dtype": observed[0] if observed else None,
        "n_params": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def run(ctx: Any) -> dict[str, Any]:
    """efflab entry point: validate, train, turn raw measurements into metrics."""
    start_kb = _status_kb("VmRSS")
    cfg = dict(ctx.inputs)
    script_dir = Path(getattr(ctx, "script_dir", None) or Path(__file__).parent)
    problems = _load_check(script_dir).check(cfg)
    if problems:
        raise BadInput(*problems[0])

    with ctx.timer("import_torch"):  # ~2 s of every invocation; kept apart from training
        import torch  # noqa: F401
        import torch.utils.checkpoint  # noqa: F401

    load_before = os.getloadavg()[0]
    with ctx.timer("train"):
        raw = train(cfg, ctx.seed, energy=ctx.energy, log=ctx.log)
    load_after = os.getloadavg()[0]

    times, losses = raw["step_times_s"], raw["losses"]
    tokens_per_step = cfg["batch_size"] * cfg["seq_len"]
    finite = all(math.isfinite(x) for x in losses)
    metrics: dict[str, float] = {
        "tokens_per_s": tokens_per_step * len(times) / sum(times),
        "step_time_median_s": statistics.median(times),
        "step_cpu_time_median_s": statistics.median(raw["step_cpu_times_s"]),
        "peak_rss_mb": raw["peak_kb"] / MB,
        "peak_rss_above_baseline_mb": (raw["peak_kb"] - raw["baseline_kb"]) / MB,
        "activation_saved_mb": raw["saved_activation_bytes"] / 2**20,
        "loss_is_finite": 1.0 if finite else 0.0,
    }
    if finite:  # a diverged run keeps its record but must not write NaN into JSON
        metrics["final_loss"] = losses[-1]
    if raw["joules"] is not None:
        metrics["energy_per_step_j"] = raw["joules"] / len(times)

    flags = _cpu_flags()
    values = {
        "precision": cfg["precision"],
        "checkpointing": cfg["checkpointing"],
        "autocast_dtype_observed": raw["observed_dtype"],
        "energy_method": raw["energy_method"],
        "losses": losses,
        "step_times_s": times,
        "step_cpu_times_s": raw["step_cpu_times_s"],
        "timed_steps": len(times),
        "tokens_per_step": tokens_per_step,
        "n_params": raw["n_params"],
        "baseline_rss_mb": raw["baseline_kb"] / MB,
        "rss_at_start_mb": start_kb / MB if start_kb is not None else None,
        "peak_rss_method": raw["peak_method"],
        "peak_rss_reset_at_baseline": raw["hwm_reset"],
        "threads": cfg["threads"],
        "torch_version": raw["torch_version"],
        "cpu_capability": raw["cpu_capability"],
        "cpu_bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}),
        "pid": os.getpid(),
        # Contention evidence for a shared host: with one thread a quiet box gives a CPU
        # share near 1.0; much lower means wall-clock metrics (and the wall-based part
        # of an energy estimate) include time spent waiting for a core.
        "cpu_share_during_steps": sum(raw["step_cpu_times_s"]) / (sum(times) * cfg["threads"]),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": load_after,
    }
    return {"metrics": metrics, "values": values}
