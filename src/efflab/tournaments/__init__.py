"""Optimization tournaments: spec, submissions, sealed verification, the tamper-evident ledger, leaderboards."""
