"""train-offload: activation offloading to files with saved-tensor hooks (SSDTrain).

SSDTrain offloads the activations autograd saves for backward to NVMe SSDs and
overlaps those writes with the forward computation, cutting activation memory with
little throughput loss. Ours: torch.autograd.graph.saved_tensors_hooks packs every
saved tensor above a size threshold into a file in the job's folder (a real file
system; the page cache may hold the bytes, as it would for SSDTrain before writeback)
and unpacks it in backward. `offload-sync` writes in the forward pass's thread;
`offload-async` hands writes to a writer thread and only waits for them in backward,
which is the overlap the paper relies on. The first step is a warm-up and not timed.
"""

from __future__ import annotations

import ctypes
import statistics
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tinytrain.memory import PeakAbove
from tinytrain.mlp import mlp
from torch.nn import functional as F

M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


class FileOffload:
    """pack: write the tensor to a file (now or in a writer thread); unpack: read it."""

    def __init__(self, folder: Path, asynchronous: bool, min_bytes: int) -> None:
        self.folder = folder
        self.min_bytes = min_bytes
        self.pool = ThreadPoolExecutor(max_workers=1) if asynchronous else None
        self.n = 0
        self.bytes = 0

    @staticmethod
    def _write(path: Path, t: torch.Tensor) -> None:
        t.numpy().tofile(path)

    def pack(self, t: torch.Tensor) -> Any:
        if t.numel() * t.element_size() < self.min_bytes or t.dtype != torch.float32:
            return t
        self.n += 1
        self.bytes += t.numel() * t.element_size()
        path = self.folder / f"act-{self.n}.bin"
        t = t.detach()
        if self.pool is None:
            self._write(path, t)
            return (path, t.shape, None)
        return (path, t.shape, self.pool.submit(self._write, path, t))

    def unpack(self, packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        path, shape, fut = packed
        if isinstance(fut, Future):
            fut.result()
        out = torch.from_numpy(np.fromfile(path, dtype=np.float32)).reshape(shape)
        path.unlink()
        return out


def release_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 128 KiB (mallopt M_MMAP_THRESHOLD), which also stops
    it from growing: every tensor above that is its own mapping, unmapped when freed."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024))
    except OSError:
        return False


def one_step(model, opt, x, y, off: FileOffload | None) -> torch.Tensor:
    opt.zero_grad(set_to_none=False)
    if off is None:
        loss = F.cross_entropy(model(x), y)
    else:
        with torch.autograd.graph.saved_tensors_hooks(off.pack, off.unpack):
            loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    torch.set_num_threads(int(inp["threads"]))
    seed = int(inp["seed"]) + ctx.repetition
    hidden, bs = int(inp["hidden"]), int(inp["batch_size"])
    model = mlp(hidden, hidden, int(inp["layers"]), 10, seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(bs, hidden, generator=gen)
    y = torch.randint(0, 10, (bs,), generator=gen)
    folder = Path(tempfile.mkdtemp(prefix="offload-", dir=ctx.out_dir))
    off = FileOffload(folder, inp["mode"] == "offload-async", int(inp["min_offload_kb"]) * 1024)
    times: list[float] = []
    loss = torch.zeros(())
    # freed memory goes back to the kernel at once, so the resident peak follows the live
    # tensors: glibc otherwise raises its mmap threshold after the first large free and
    # serves later tensors from a heap that keeps its high-water mark
    release_freed_memory()
    for p in model.parameters():  # gradient buffers exist before the baseline
        p.grad = torch.zeros_like(p)
    one_step(model, opt, x, y, None)  # warm-up: the math libraries' one-time buffers
    with PeakAbove() as mem:
        for _ in range(int(inp["steps"])):
            t0 = time.perf_counter()
            loss = one_step(model, opt, x, y, None if inp["mode"] == "keep" else off)
            times.append(time.perf_counter() - t0)
    if off.pool is not None:
        off.pool.shutdown()
    steps = int(inp["steps"])
    ctx.log.info(f"{inp['mode']}: peak +{mem.mb:.1f} MB, step {statistics.median(times[1:]):.3f} s")
    return {
        "metrics": {
            "peak_rss_above_baseline_mb": mem.mb,
            "step_time_median_s": statistics.median(times[1:]),
            "offloaded_mb_per_step": off.bytes / steps / 2**20,
            "final_loss": float(loss.detach()),
        },
        "values": {"peak_method": mem.method, "offload_dir_fs": str(folder)},
    }
