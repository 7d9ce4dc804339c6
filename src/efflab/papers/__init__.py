"""Paper reproductions: spec, claim language, evaluation over tables, reproduce, reports."""
