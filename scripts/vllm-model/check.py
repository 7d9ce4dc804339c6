"""Plan-time rules for vllm-model (pure, fast)."""

from vllmserve.checks import check_vllm as check  # noqa: F401
