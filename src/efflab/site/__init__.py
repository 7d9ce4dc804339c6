"""The browsable site: one static view over every experiment, paper, tournament, night and
machine in results/ (`efflab site build|serve`)."""
