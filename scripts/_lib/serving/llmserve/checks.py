"""Pure plan-time checks shared by the serving scripts' check.py (no heavy imports).

Why: impossible combinations (heads not dividing d_model, prompts longer than the
context, ...) must fail before any run starts; JSON-schema covers single fields, these
rules cover the combinations.
"""

from __future__ import annotations

import re
from typing import Any

Problem = tuple[str, str, Any]

ENGINE_POLICY_RE = re.compile(r"^(prefill-first|decode-first|chunked(-[1-9][0-9]*)?)$")
SIM_POLICY_RE = re.compile(
    r"^(prefill-first|decode-first|chunked(-[1-9][0-9]*)?|splitwise-(?P<p>[1-9][0-9]*)p(?P<d>[1-9][0-9]*)d)$"
)


def _ranges(inputs: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name in ("prompt_len", "output_len"):
        lo, hi = inputs.get(f"{name}_min"), inputs.get(f"{name}_max")
        if lo is not None and hi is not None and lo > hi:
            out.append((f"{name}_min", f"<= {name}_max ({hi})", lo))
    return out


def _policy(inputs: dict[str, Any], pattern: re.Pattern[str]) -> list[Problem]:
    pol = inputs.get("policy", "")
    if not pattern.match(str(pol)):
        return [("policy", f"a policy matching {pattern.pattern}", pol)]
    if pol == "chunked" and int(inputs.get("token_budget", 1)) < 1:
        return [("token_budget", ">= 1", inputs.get("token_budget"))]
    return []


def _rate(inputs: dict[str, Any]) -> list[Problem]:
    if inputs.get("rate") == "custom" and not float(inputs.get("rate_rps", 0)) > 0:
        return [("rate_rps", "> 0 req/s", inputs.get("rate_rps"))]
    return []


def check_engine(inputs: dict[str, Any]) -> list[Problem]:
    """Rules for scripts that build the real engine (serve-engine, serve-loadgen)."""
    out = _policy(inputs, ENGINE_POLICY_RE) + _ranges(inputs) + _rate(inputs)
    d, h = inputs.get("d_model"), inputs.get("heads")
    if d is not None and h and d % h:
        out.append(("heads", f"a divisor of d_model ({d})", h))
    ctx = inputs.get("max_context")
    pmax, omax = inputs.get("prompt_len_max"), inputs.get("output_len_max")
    if ctx is not None and pmax is not None and omax is not None and pmax + omax > ctx:
        out.append(
            (
                "prompt_len_max",
                f"prompt_len_max + output_len_max <= max_context ({ctx})",
                pmax + omax,
            )
        )
    return out


def check_sim(inputs: dict[str, Any]) -> list[Problem]:
    """Rules for the simulator: policy/cluster consistency, ranges, power cap."""
    out = _policy(inputs, SIM_POLICY_RE) + _ranges(inputs)
    m = SIM_POLICY_RE.match(str(inputs.get("policy", "")))
    n = inputs.get("instances")
    if m and m.group("p") and n is not None:
        p, d = int(m.group("p")), int(m.group("d"))
        if p + d != n:
            out.append(
                (
                    "policy",
                    f"splitwise prefill + decode instances == instances ({n})",
                    inputs.get("policy"),
                )
            )
    cap = inputs.get("power_cap")
    if cap is not None and not 0 < float(cap) <= 1:
        out.append(("power_cap", "a fraction of TDP in (0, 1]", cap))
    return out


# the fitted cost model describes serve-engine's default model
ENGINE_MAX_CONTEXT = 512


def check_sim_context(inputs: dict[str, Any]) -> list[Problem]:
    """check_sim plus the model's context: prompt + output must fit it (serve-sim and
    serve-sim-capacity)."""
    out = check_sim(inputs)
    if inputs.get("cost_model") == "fitted":
        ctx = ENGINE_MAX_CONTEXT
    else:
        from pathlib import Path

        import yaml

        data = yaml.safe_load((Path(__file__).parent / "hardware.yaml").read_text())
        ctx = data["models"][inputs["model"]]["max_context"]
    total = inputs["prompt_len_max"] + inputs["output_len_max"]
    if total > ctx:
        out.append(
            (
                "prompt_len_max",
                f"prompt_len_max + output_len_max <= {ctx} "
                f"(context of the {inputs.get('cost_model')} model)",
                total,
            )
        )
    return out
