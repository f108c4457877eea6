"""What to run: suites, case families with their expectations, and the planners that make tasks."""
