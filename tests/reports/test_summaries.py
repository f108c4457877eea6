"""The numbers behind the pages, checked on the fixture run against its raw records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.vocabulary import FAILURE_VERDICTS
from reports import fmt
from reports.data import ReportData, ce_kind, load_report_data, mode_of
from reports.pages import stability, throughput
from reports.pages.cross_entropy import pairs
from reports.pages.stability import failing_specials
from reports.pages.throughput import fastest
from reports.summaries import leaderboard, stability_cells, winners
from reports.tables import Cell, Column, Table, mark_best
from tests.reports.runs import FIXTURE, derived_run, read_run


@pytest.fixture(scope="module")
def data() -> ReportData:
    return load_report_data([FIXTURE])


def test_records_are_all_there_with_machine_and_outcome(data: ReportData) -> None:
    _, raw = read_run()
    assert len(data.records) == len(raw)
    assert set(data.records["platform"]) == {"vm · cpu"}
    assert data.synthetic_count == sum(bool(r.get("synthetic")) for r in raw) > 0
    crash = data.records[data.records["implementation"] == "hostile.crash"]
    assert "crash" in set(crash["outcome"])


def test_leaderboard_counts_match_the_raw_records(data: ReportData) -> None:
    _, raw = read_run()
    board = leaderboard(data.accuracy)
    row = board[(board["implementation"] == "numpy.softmax_naive") & (board["dtype"] == "float32")
                & (board["pass"] == "forward")].iloc[0]
    scored = [r for r in raw if r["implementation"] == "numpy.softmax_naive"
              and r["dtype"] == "float32" and r["pass"] == "forward"
              and r["case_status"] == "scored" and r["status"] not in ("unsupported",
                                                                       "unavailable")]
    assert row["cases"] == len(scored)
    assert row["failing"] == sum(r["verdict"] in FAILURE_VERDICTS for r in scored)
    assert row["max_ulp"] == max(r["max_ulp"] for r in scored if r["max_ulp"] is not None)


def test_the_winner_fails_least_then_has_the_smallest_max_ulp(data: ReportData) -> None:
    board = leaderboard(data.accuracy)
    best = winners(board)
    assert len(best) == len(board.groupby(["platform", "op", "pass", "dtype"]))
    for _, w in best.iterrows():
        group = board[(board["op"] == w["op"]) & (board["pass"] == w["pass"])
                      & (board["dtype"] == w["dtype"])]
        fewest = group["failing"].min()
        assert w["failing"] == fewest
        contenders = group[group["failing"] == fewest]["max_ulp"].dropna()
        if len(contenders):
            assert w["max_ulp"] == contenders.min()


def test_stability_cells_say_who_fails_what_and_why_not_run(data: ReportData) -> None:
    cells = stability_cells(data.accuracy, data.adversarial_families)
    naive = cells[("numpy.softmax_naive", "large_offset")]
    assert naive.verdict == "nan_where_finite" and naive.failing == naive.total == 2
    assert {d["dtype"] for d in naive.shown} == {"float16", "float32"}
    assert all(d["got"] == "nan" and d["expected"] for d in naive.shown)
    torch = cells[("torch.nn.functional.softmax", "large_offset")]
    assert torch.verdict is None and "torch failed to import" in torch.not_run
    assert cells[("hostile.crash", "nan_in_row")].verdict == "crash"
    specials = failing_specials(cells, data.adversarial_families)
    assert ("large_offset", "nan_where_finite", ["numpy.softmax_naive"]) in specials


def test_fused_and_composed_cross_entropy_are_paired(data: ReportData) -> None:
    found = pairs(data)
    sparse32 = [p for p in found if p.op == "sparse_softmax_cross_entropy"
                and p.dtype == "float32" and p.pass_ == "forward"]
    assert [(p.fused, p.composed) for p in sparse32] == [
        ("numpy.cross_entropy_fused", "numpy.cross_entropy_composed")]
    pair = sparse32[0]
    # synthetic timing: the fused loss is modelled 2.9 / 1.7 times as fast as the composed one
    assert pair.speedup is not None and pair.speedup == pytest.approx(2.9 / 1.7, rel=0.05)
    assert pair.speed_verdict == "fused" and pair.sizes == 3
    assert pair.fused_acc is not None and pair.composed_acc is not None


def test_fastest_is_the_smallest_median_at_the_largest_size(data: ReportData) -> None:
    best = fastest(data.timing)
    row = best[(best["op"] == "softmax") & (best["dtype"] == "float32")].iloc[0]
    group = data.timing[(data.timing["op"] == "softmax") & (data.timing["dtype"] == "float32")]
    largest = group[group["elements"] == group["elements"].max()]
    assert row["median_s"] == largest["median_s"].min()
    assert row["implementation"] == "numpy.softmax_naive"  # modelled fastest (3.1 GB/s)


def test_names_mode_and_kind() -> None:
    assert mode_of("torch.nn.functional.softmax@compile") == "compile"
    assert mode_of("torch.nn.functional.softmax") == "eager"
    assert ce_kind("jax.composed_softmax_log_pick@jit") == "composed"
    assert ce_kind("optax.softmax_cross_entropy") == "fused"


def test_mark_best_ignores_failing_rows_in_error_columns() -> None:
    columns = (Column("name"), Column("failing", True, "min", all_rows=True),
               Column("max ulp", True, "min"))
    rows = [[Cell("a"), Cell("0", 0.0), Cell("3", 3.0)],
            [Cell("b"), Cell("2", 2.0), Cell("1", 1.0)],
            [Cell("c"), Cell("0", 0.0), Cell("5", 5.0)]]
    table = mark_best(Table("t", columns, rows), contenders=[True, False, True])
    assert [r[1].cls for r in table.rows] == ["best", "", "best"]
    assert [r[2].cls for r in table.rows] == ["best", "", ""]


def test_formatting() -> None:
    assert fmt.seconds(0.00123) == "1.23 ms" and fmt.seconds(2.5e-7) == "250 ns"
    assert fmt.ulp(0.5) == "0.5" and fmt.ulp(1.4e7) == "1.4e+07"
    assert fmt.number(math.nan) == "–" and fmt.number(None) == "–"
    assert fmt.number(math.inf) == "∞" and fmt.percent(0.315) == "32%"
    assert fmt.bytes_(3 * 2**20) == "3 MiB"


def test_roofline_share_is_of_the_fastest_copy_on_the_device(data: ReportData) -> None:
    """The fixture is a version-1 run: the store upgraded its shares to the fastest copy on the
    device (tests/harness/test_results.py), and the report shows those, and that copy as the
    roofline."""
    _, records = read_run()
    ok = [r for r in records if r["case_family"] == "throughput" and r["status"] == "ok"]
    fastest_copy = max(r["copy_gbps"] for r in ok)  # 9.5: numpy's float32 copy
    assert {r["copy_gbps"] for r in ok} == {8.7, 9.5}  # two copies, one device
    timing = data.timing
    assert set(timing["device_copy_gbps"]) == {fastest_copy}
    assert (timing["roofline_fraction"] == timing["gbps"] / fastest_copy).all()
    assert (timing["framework_roofline_fraction"] == timing["gbps"] / timing["copy_gbps"]).all()


def test_the_report_shows_the_stored_roofline_and_families(tmp_path: Path) -> None:
    """A version-2 run stores its shares, its device roofline and its adversarial families: the
    report divides nothing and takes the families from the run."""

    def v2(run: dict[str, Any]) -> None:
        run["schema_version"] = 2
        run["meta"]["families"] = {"large_offset": {"adversarial": False},
                                   "nan_in_row": {"adversarial": True}}

    def stored(r: dict[str, Any]) -> dict[str, Any]:
        if r["case_family"] != "throughput" or r["status"] != "ok":
            return r
        return {**r, "roofline_fraction": 0.125, "framework_roofline_fraction": 0.25,
                "device_copy_gbps": 1000.0}

    report = load_report_data([derived_run(tmp_path / "v2", edit_run=v2, edit=stored)])
    assert set(report.timing["roofline_fraction"]) == {0.125}
    assert set(report.timing["device_copy_gbps"]) == {1000.0}
    assert report.adversarial_families == ("nan_in_row",)
    page = stability.build(report)
    assert page.context["families"] == ["nan_in_row"]
    roof = [s for s in throughput.timing_series(report.timing, ["implementation"])
            if s.name.startswith("copy roofline")]
    assert roof and all(set(s.y) == {1000.0} for s in roof)
