"""Nightly benchmark pipeline: the suite, history of nights, regression statistics, the night itself, the dashboard."""
