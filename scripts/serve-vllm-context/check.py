"""Plan-time rules for serve-vllm-context (pure, fast)."""

from typing import Any

from vllmserve.checks import check_vllm


def check(inputs: dict[str, Any]) -> list[tuple[str, str, Any]]:
    out = check_vllm({k: v for k, v in inputs.items() if k != "policy"})
    mml, n = inputs.get("max_model_len", 0), inputs.get("output_len", 0)
    for name in ("ctx_short", "ctx_mid", "ctx_long"):
        if inputs.get(name, 0) + n > mml:
            out.append((name, f"{name} + output_len <= max_model_len ({mml})", inputs[name] + n))
    return out
