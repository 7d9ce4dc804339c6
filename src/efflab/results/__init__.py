"""Results layer: run records, provenance, versioned tables, publishing, and the rendering every view shares."""
