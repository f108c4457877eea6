"""Score one implementation output against the exact reference: metrics, bounds, verdict.

The package, along its seams: :mod:`.error_model` (row statistics, the componentwise model and
the Blanchard–Higham–Higham bound, ``ulp_limits``), :mod:`.conventions` (special rows judged
with the family's expectations: the reference's special values or an accepted alternative),
:mod:`.scorer` (``score``, ``score_outcome``), :mod:`.exceptions` (``score_exception``) and
:mod:`.fields` (the metric fields of a record, the verdict names). The rules, thresholds and
their justification are in docs/scoring.md.

The verdict vocabulary (names, order, failures, accuracy classes) is declared in
:mod:`harness.vocabulary`; it is re-exported here for the modules that still take it from here.
"""

from __future__ import annotations

from harness.scoring.conventions import ALTERNATIVES, RAISING_ACCEPTED
from harness.scoring.error_model import THRESHOLDS, Limits, ulp_limits
from harness.scoring.exceptions import score_exception
from harness.scoring.fields import METRIC_FIELDS
from harness.scoring.scorer import score, score_outcome
from harness.vocabulary import ACCURACY_CLASSES, FAILURE_VERDICTS, VERDICT_RANK, VERDICTS

__all__ = [
    "ACCURACY_CLASSES",
    "ALTERNATIVES",
    "FAILURE_VERDICTS",
    "Limits",
    "METRIC_FIELDS",
    "RAISING_ACCEPTED",
    "THRESHOLDS",
    "VERDICTS",
    "VERDICT_RANK",
    "score",
    "score_exception",
    "score_outcome",
    "ulp_limits",
]
