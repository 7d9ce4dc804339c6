"""Plan-time rules for serve-sim (pure, fast): policy/cluster, ranges, context length."""

from pathlib import Path

import yaml
from llmserve.checks import check_sim

ENGINE_MAX_CONTEXT = 512  # the fitted cost model describes serve-engine's default model


def check(inputs: dict) -> list:
    out = check_sim(inputs)
    if inputs.get("cost_model") == "fitted":
        ctx = ENGINE_MAX_CONTEXT
    else:
        import llmserve

        data = yaml.safe_load((Path(llmserve.__file__).parent / "hardware.yaml").read_text())
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
