"""softmax-bench reports: turn a results store (run directories) into a static HTML site.

Reports only read results (`harness.store.load` and each run's run.json); they never run
anything and never import a framework. `build_report(run_dirs, out)` is the entry point that
`softmax-bench report` and `softmax-bench run` call.
"""

from reports.site import ReportError, build_report, build_single_file

__all__ = ["ReportError", "build_report", "build_single_file"]
