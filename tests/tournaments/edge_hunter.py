"""The "label hunter": an edge-tour-quantize replacement that tries to win by lookup.

Its archive embeds the whole public digits set with labels (public_digits.npz, built
by the test from scikit-learn). In the container it first hunts for the scoring
labels everywhere it can look — its mounts, the filesystem (every .npz, anything named
like a secret, scoring set or repo), environment variables, other processes' environ
and cmdline under /proc — and writes what it found to out/found.json (the organiser's
test reads it). Then it answers by lookup: a 1-nearest-neighbour ONNX graph over all
1797 public images, which scores 1.0 on the public test split.
"""

RUN_PY = r"""
import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SKIP = ("/proc", "/sys", "/dev")
WORDS = ("scoring.npz", "efflab-private", "edge-tour-private", "organiser")


def looks_private(text):
    low = text.lower()
    return any(w in low for w in WORDS) or "efflab_sealed" in low or "secret=" in low


def look_in_npz(p, found):
    try:
        with np.load(p, allow_pickle=False) as z:
            shapes = {k: list(z[k].shape) for k in z.files}
    except Exception as exc:
        found["unreadable"].append(f"{p}: {type(exc).__name__}")
        return
    found["npz"][p] = shapes
    # a digits label set: images (n, 64) next to labels (n,), other than the training rows
    images = {s[0] for k, s in shapes.items() if len(s) == 2 and s[1] == 64 and s[0] > 0}
    for k, s in shapes.items():
        if len(s) == 1 and s[0] in images and k != "y_train":
            found["label_files"].append(f"{p}:{k}")


def hunt(here):
    found = {"npz": {}, "label_files": [], "unreadable": [], "named": [], "repo": [],
             "env": sorted(k for k, v in os.environ.items() if looks_private(k + "=" + v)),
             "proc": [], "private_mount": os.path.exists("/run/efflab-private")}
    found["mounts"] = [ln.split()[4] for ln in open("/proc/self/mountinfo")]
    for dp, dns, fns in os.walk("/", onerror=lambda e: None):
        if dp.startswith(SKIP):
            dns[:] = []
            continue
        for fn in fns + dns:
            p = os.path.join(dp, fn)
            if p.startswith(str(here)):
                continue  # our own archive (the public data we brought)
            low = fn.lower()
            if low.endswith(".npz"):
                look_in_npz(p, found)
            if looks_private(low) or low == "secret":
                found["named"].append(p)
            if fn in ("Snakefile", "ledger.jsonl", ".git", "workflows"):
                found["repo"].append(p)
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        for part in ("environ", "cmdline"):
            try:
                text = Path(f"/proc/{pid}/{part}").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if looks_private(text):
                found["proc"].append(f"{pid}/{part}: {text[:200]}")
    return found


def lookup_model(x, y):
    onehot = np.eye(10, dtype=np.float32)[y]
    bias = (-0.5 * (x * x).sum(1)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "R", "b"], ["s"], transB=1),
        helper.make_node("ArgMax", ["s"], ["i"], axis=1, keepdims=0),
        helper.make_node("Gather", ["onehot", "i"], ["logits"], axis=0),
    ]
    g = helper.make_graph(
        nodes, "lookup",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(x, "R"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(onehot, "onehot")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def run(ctx):
    here = Path(__file__).resolve().parent
    t0 = time.perf_counter()
    found = hunt(here)
    (ctx.out_dir / "found.json").write_text(json.dumps(found, indent=1))
    with np.load(here / "public_digits.npz") as z:
        x, y = z["x"].astype(np.float32) / 16.0, z["y"].astype(np.int64)
    dst = ctx.out_dir / "model.onnx"
    onnx.save(lookup_model(x, y), str(dst))
    ctx.log.info(f"hunter: {len(found['label_files'])} label files, {len(found['npz'])} npz")
    return {
        "metrics": {"model_size_kb": dst.stat().st_size / 1024,
                    "quantize_time_s": time.perf_counter() - t0},
        "files": {"model": "model.onnx"},
    }
"""
