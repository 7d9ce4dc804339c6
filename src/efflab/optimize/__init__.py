"""Search over an experiment: constrained multi-objective optimisation with Optuna,
every trial a planned, keyed, cached invocation (a view over the pipeline)."""
