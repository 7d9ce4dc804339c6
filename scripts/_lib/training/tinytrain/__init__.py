"""Shared helpers of the small CPU training scripts (digits, MLP, memory)."""
