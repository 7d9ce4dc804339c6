"""Workflow layer: the Snakemake adapter (the only caller of Snakemake), profiles, SLURM preflight and the pipeline every view shares."""
