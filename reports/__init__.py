"""softmax-bench reports: turn a results store (run directories) into a static HTML site.

Reports only read results (`harness.results.load`); they never run anything.
"""
