"""Contention judged on the job side: what counts as the job's own CPU."""

from __future__ import annotations


def test_cpu_a_pooled_helper_spent_for_the_job_is_its_own() -> None:
    """A script whose work ran in a pooled daemon (vLLM's engine pool) reports it as
    values.delegated_cpu_s; anything else there counts as nothing."""
    from efflab.runtime.outputs import delegated_cpu_s

    assert delegated_cpu_s({"values": {"delegated_cpu_s": 12.5}}) == 12.5
    for bad in ({}, {"values": None}, {"values": {"delegated_cpu_s": True}},
                {"values": {"delegated_cpu_s": -3}}, {"values": {"delegated_cpu_s": "9"}}):  # fmt: skip
        assert delegated_cpu_s(bad) == 0.0
