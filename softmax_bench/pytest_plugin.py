"""The pytest plugin (entry point ``pytest11``): installing softmax-bench is enough.

    @pytest.mark.softmax_cases(op="softmax", suite="quick", dtypes=("float32",), families=None)
    def test_my_softmax(softmax_case):
        softmax_case.check(my_softmax(softmax_case.x))

The marker parametrizes the fixture ``softmax_case`` over the suite's cases for ``op`` in
``dtypes`` (test ids are the case ids, with the dtype when there are several); each is a
``softmax_bench.testing.Case``: ``.x``, ``.labels``, ``.options``, ``.op``, ``.dtype``,
``.case_id``, ``.check(actual)``, ``.check_grad(grad)``, ``.call(fn)``. A case that cannot exist
in a dtype (a value it cannot hold) is skipped with that reason.

This module imports only pytest: every pytest run in an environment with softmax-bench loads
it, so the harness (numpy, the reference) is imported only when a test uses the marker.
"""

from __future__ import annotations

from typing import Any

import pytest

MARKER = "softmax_cases"
FIXTURE = "softmax_case"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(op='softmax', suite='quick', dtypes=('float32',), families=None): "
        f"parametrize the fixture {FIXTURE} over softmax-bench's cases (softmax_bench.testing)")


def _marker_args(marker: pytest.Mark) -> dict[str, Any]:
    kwargs = dict(marker.kwargs)
    names = ("op", "suite", "dtypes", "families")
    if len(marker.args) > len(names):
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes at most {len(names)} positional "
                                "arguments (op, suite, dtypes, families)")
    for name, value in zip(names, marker.args):
        if name in kwargs:
            raise pytest.UsageError(f"@pytest.mark.{MARKER}: {name} given twice")
        kwargs[name] = value
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown arguments {unknown}; expected "
                                f"{', '.join(names)}")
    return kwargs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return  # the fixture says what is missing when the test runs
    from softmax_bench.testing import cases

    kwargs = _marker_args(marker)
    try:
        found = cases(kwargs.get("op", "softmax"), suite=kwargs.get("suite", "quick"),
                      dtypes=kwargs.get("dtypes", ("float32",)),
                      families=kwargs.get("families"))
    except Exception as exc:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.{MARKER}: "
                                f"{exc}") from None
    if not found:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.{MARKER} selects "
                                "no case")
    several = len({c.dtype for c in found}) > 1
    params = [pytest.param(c, id=f"{c.case_id}-{c.dtype}" if several else c.case_id,
                           marks=[pytest.mark.skip(reason=f"{c.case_id} in {c.dtype}: "
                                                          f"{c.unsupported}")]
                           if c.unsupported else [])
              for c in found]
    metafunc.parametrize(FIXTURE, params)


@pytest.fixture
def softmax_case(request: pytest.FixtureRequest) -> Any:
    """One softmax-bench case (``softmax_bench.testing.Case``); needs the marker
    ``@pytest.mark.softmax_cases(op=...)`` on the test."""
    param = getattr(request, "param", None)
    if param is None:
        pytest.fail(f"the fixture {FIXTURE} needs @pytest.mark.{MARKER}(op=..., suite=..., "
                    "dtypes=...) on the test", pytrace=False)
    return param
