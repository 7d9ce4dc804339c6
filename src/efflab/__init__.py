"""efflab: reproducible AI-efficiency experiments on Snakemake, Docker and versioned tables."""

__version__ = "0.1.0"
