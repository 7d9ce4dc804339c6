"""Shared code of the edge-digits tournament scripts (edge-tour-*): augmentation, sets.

Kept apart from edgelib so that the papers' edge-digits keys (which hash edgelib) do
not move when the tournament's scoring changes.
"""
