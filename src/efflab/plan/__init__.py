"""Plan layer: scripts found by tags (registry) and experiments expanded into keyed invocations (planner). Pure: reads specs, runs nothing."""
