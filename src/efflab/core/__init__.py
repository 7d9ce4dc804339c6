"""Core: the few things every layer needs (errors, spec loading, atomic writes, the Invocation, paths). Imports nothing from efflab."""
