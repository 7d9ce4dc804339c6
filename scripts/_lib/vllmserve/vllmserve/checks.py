"""Plan-time rules shared by the vLLM scripts' check.py (pure: no vLLM, no torch)."""

from __future__ import annotations

import re
from typing import Any

POLICY_RE = re.compile(r"^(whole-prompt|chunked-[1-9][0-9]*)$")


def check_vllm(inputs: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Impossible combinations: lengths out of order, requests past max_model_len."""
    out: list[tuple[str, str, Any]] = []
    for name in ("prompt_len", "output_len"):
        lo, hi = inputs.get(f"{name}_min"), inputs.get(f"{name}_max")
        if lo is not None and hi is not None and lo > hi:
            out.append((f"{name}_min", f"<= {name}_max ({hi})", lo))
    mml = inputs.get("max_model_len")
    pmax, omax = inputs.get("prompt_len_max"), inputs.get("output_len_max")
    if mml is not None and pmax is not None and omax is not None and pmax + omax > mml:
        out.append(
            (
                "prompt_len_max",
                f"prompt_len_max + output_len_max <= max_model_len ({mml})",
                pmax + omax,
            )
        )
    pol = str(inputs.get("policy", "whole-prompt"))
    if not POLICY_RE.match(pol):
        out.append(("policy", f"a policy matching {POLICY_RE.pattern}", pol))
    hidden, kv = inputs.get("hidden", 64), inputs.get("kv_heads", 1)
    if hidden % 64:
        out.append(("hidden", "a multiple of 64 (the head size)", hidden))
    elif (hidden // 64) % kv:
        out.append(("kv_heads", f"a divisor of the {hidden // 64} attention heads", kv))
    return out
