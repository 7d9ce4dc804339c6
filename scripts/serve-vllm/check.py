"""Plan-time rules for serve-vllm (pure, fast)."""

from vllmserve.checks import check_vllm as check  # noqa: F401
