"""The worst-case search (``softmax-bench search``; docs/search.md): a third planner on the one
engine that spends a budget of implementation calls per (implementation, op, dtype, pass)
looking for the input with the worst outcome.

Along its seams: :mod:`.space` (the structured rows and the refinement moves),
:mod:`.strategy` (the objective, the kept list, the order of the budget), :mod:`.planner` (the
engine's ``Planner``: units, messages, scoring; ``run_search``) and :mod:`.replay`
(``worst-cases.toml``).
"""

from __future__ import annotations

from harness.planning.search.planner import SearchOptions, SearchPlanner, SearchTask, run_search
from harness.planning.search.replay import SEARCH_OPS, WORST_CASES, write_worst_cases
from harness.planning.search.strategy import Searcher, objective

__all__ = ["SEARCH_OPS", "WORST_CASES", "SearchOptions", "SearchPlanner", "SearchTask",
           "Searcher", "objective", "run_search", "write_worst_cases"]
