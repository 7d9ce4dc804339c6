"""Plan-time rules for serve-vllm-loadgen (pure, fast)."""

from vllmserve.checks import check_vllm as check  # noqa: F401
