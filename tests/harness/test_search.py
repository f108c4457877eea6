"""The worst-case search (harness.planning.search, `softmax-bench search`): the budget, the
determinism, crashes as findings, Ctrl-C, worst-cases.toml replays, the explicit_rows family,
the report page, and the planted bugs (tests/harness/planted_plugins.py): invisible to the
quick and full suites, found by the search. The 2000-call Done-when run over every planted
bug is benchmarks/test_search.py (minutes)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from harness import store
from harness.cli import main
from harness.planning import cases as C
from harness.planning.cases.explicit import EncodingError, decode_array, encode_array
from harness.planning.request import RunOptions
from harness.planning.search import SearchOptions, objective, run_search
from harness.planning.search.replay import WORST_CASES, replay_mismatches
from harness.planning.search.strategy import Searcher
from harness.planning.suites import get_suite
from harness.run import run_suite

from . import planted_plugins as P

ENTRY_POINTS = "[softmax_bench.plugins]\nplanted = planted_plugins:plugins\n"


@pytest.fixture
def planted(install_plugins):  # type: ignore[no-untyped-def]
    install_plugins(ENTRY_POINTS, ("planted_plugins.py",))


def _search(out: Path, impls: tuple[str, ...], budget: int, seed: int = 0, **kw: object
            ) -> tuple[Path, dict[str, int], object]:
    opts = SearchOptions(include=impls, budget=budget, seed=seed, out=out, timeout=30.0,
                         **kw)  # type: ignore[arg-type]
    return run_search(opts)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]


# -- explicit rows --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64,
                                   np.int64])
def test_encoded_arrays_keep_every_bit(dtype: Any) -> None:
    if np.dtype(dtype).kind == "f":
        a = np.array([[np.nan, -0.0, np.inf, -np.inf, 1e-40, 3.0]]).astype(dtype)
    else:
        a = np.array([[0, -1, 2**40, 7]], dtype=dtype)
    back = decode_array(encode_array(a))
    assert back.dtype == a.dtype and back.shape == a.shape and back.tobytes() == a.tobytes()


def test_a_malformed_array_is_one_line() -> None:
    with pytest.raises(EncodingError, match="not an encoded array"):
        decode_array("float32:1x2:%%%")
    with pytest.raises(EncodingError, match="unknown dtype"):
        decode_array("complex64:1x2:AAAA")


def test_explicit_rows_family_runs_the_rows_as_written(tmp_path: Path) -> None:
    x = np.array([[1.0, 2.0, np.inf]], dtype=np.float32)
    suite = tmp_path / "rows.toml"
    suite.write_text(f'[[cases]]\nfamily = "explicit_rows"\ndtypes = ["float32"]\n'
                     f'ops = ["softmax"]\n[cases.params]\nname = "mine"\n'
                     f'x = "{encode_array(x)}"\nstatus = "convention"\n')
    got = list(C.generate(get_suite(str(suite))))
    assert [(c.case_id, c.op, c.dtype, c.status) for c in got] == [
        ("explicit_rows[name=mine]", "softmax", "float32", "convention")]
    assert got[0].inputs["x"].tobytes() == x.tobytes()


# -- the strategy ---------------------------------------------------------------------------
def test_objective_orders_critical_then_lost_then_ratio() -> None:
    crash = objective({"status": "crash", "verdict": "crash"})
    nan = objective({"verdict": "nan_where_finite", "limit_ratio": 0.1})
    lost = objective({"verdict": "inaccurate", "counts": {"zero_for_nonzero": 1},
                      "limit_ratio": 2.0})
    big = objective({"verdict": "inaccurate", "limit_ratio": 1e9})
    ok = objective({"verdict": "pass", "limit_ratio": 0.9})
    assert crash[0] == nan[0] == 3 and lost[0] == 2 and big[0] == 1 and ok[0] == 0
    assert sorted([ok, big, lost, nan], reverse=True) == [nan, lost, big, ok]
    assert objective({"verdict": "pass", "severity": "critical"})[0] == 3


def test_the_candidates_are_deterministic_and_the_budget_exact() -> None:
    def run(seed: int) -> list[str]:
        s = Searcher("log_softmax", "float32", "forward", 300, seed=seed)
        out = []
        for c in s.candidates():
            out.append(c.digest)
            s.observe(c, {"verdict": "pass", "limit_ratio": float(len(c.digest) % 5)})
        return out

    first = run(3)
    assert len(first) == 300 and first == run(3) and first != run(4)
    assert len(set(first)) > 280  # a row is not run twice (but for the rare collision)


def test_the_space_covers_its_features() -> None:
    s = Searcher("sparse_softmax_cross_entropy", "float32", "forward", 2000, seed=0)
    lengths: list[int] = []
    kinds: Counter[str] = Counter()
    for c in s.candidates():
        lengths.append(c.row.x.shape[-1])
        kinds.update(k for k in ("gap", "mask", "special", "ties") if c.params.get(k))
        kinds.update([f"label={c.params.get('label')}"])
        s.observe(c, {"verdict": "pass"})
    assert max(lengths) >= 2**17 and min(lengths) == 1
    assert {2**k + d for k in (5, 10) for d in (-1, 1)} <= set(lengths)
    assert {n % 16 for n in lengths} == set(range(16))
    assert all(kinds[k] > 20 for k in ("gap", "mask", "special", "ties",
                                       "label=argmax", "label=other"))


# -- the planted bugs -----------------------------------------------------------------------
def _outcome(fn: object, args: list[np.ndarray]) -> bytes | str:
    try:
        return fn(*args).tobytes()  # type: ignore[operator]
    except Exception as exc:  # labels out of range: both raise alike
        return type(exc).__name__


@pytest.mark.parametrize("suite", ["quick", "full"])
def test_the_planted_bugs_are_invisible_to_the_suites(suite: str) -> None:
    """No float32 row of the suite fires a planted defect, and on every one the planted
    implementation returns exactly the bits of the exact one: the suite cannot tell them
    apart (the search can: test_search_finds_the_planted_bugs_and_replays_them)."""
    checked = 0
    for case in C.generate(get_suite(suite)):
        if case.dtype != "float32" or case.unsupported:
            continue
        for name, (op, fn, fires) in P.PLANTED.items():
            if case.op != op:
                continue
            args = [case.inputs["x"]] + ([case.inputs["targets"]] if "targets" in case.inputs
                                         else [])
            assert not fires(*args), (name, case.case_id)
            if name != "planted.softmax_nan_late":  # (it aborts where it fires)
                assert _outcome(fn, args) == _outcome(P.EXACT_OF_OP[op], args), (name,
                                                                                 case.case_id)
            checked += 1
    assert checked > 100


@pytest.mark.usefixtures("planted")
def test_search_finds_the_planted_bugs_and_replays_them(tmp_path: Path) -> None:
    impls = ("planted.softmax_remainder", "planted.softmax_ties",
             "planted.sparse_ce_last_label", "planted.softmax_nan_late",
             "planted.exact_softmax")
    out, counts, planner = _search(tmp_path / "s", impls, 300, seed=1)
    summary = {s["implementation"]: s for s in planner.summary()}  # type: ignore[attr-defined]
    for name in impls[:-1]:
        assert summary[name]["findings"] and summary[name]["calls"] == 300, summary[name]
    assert summary["planted.exact_softmax"]["findings"] == 0
    assert summary["planted.softmax_nan_late"]["worst_verdict"] == "crash"
    records = _records(out)
    per_unit = Counter(str(r["implementation"]) for r in records)
    assert set(per_unit.values()) == {300}  # the budget, exactly, crashes included
    assert counts.get("crash", 0) >= 1 and {r["case_family"] for r in records} == {"search"}
    first = records[0]["search"]
    assert {"seed", "index", "origin", "params"} <= set(first)
    again = tmp_path / "replay"
    run_suite(RunOptions(suite=str(out / WORST_CASES), include=impls, out=again))
    checked, problems = replay_mismatches(out, again)
    assert checked >= 4 * 1 + 1 and not problems, problems


@pytest.mark.usefixtures("planted")
def test_the_same_seed_gives_the_same_search(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> list[tuple[object, object]]:
        out, _, _ = _search(tmp_path / name, ("planted.softmax_ties",), 60, seed=seed)
        return [(r["case"], r["verdict"]) for r in _records(out)]

    assert run("a", 5) == run("b", 5) != run("c", 6)


@pytest.mark.usefixtures("planted")
def test_ctrl_c_keeps_the_findings(tmp_path: Path) -> None:
    seen = []

    def progress(done: int, total: int, what: str) -> None:
        seen.append(done)
        if done == 40:
            raise KeyboardInterrupt

    opts = SearchOptions(include=("planted.softmax_remainder",), budget=500, out=tmp_path / "s",
                         jobs=1)
    with pytest.raises(KeyboardInterrupt):
        run_search(opts, progress=progress)
    assert len(_records(tmp_path / "s")) == 40
    text = (tmp_path / "s" / WORST_CASES).read_text()
    assert "explicit_rows" in text and "finding" in text


@pytest.mark.usefixtures("planted")
def test_cli_search_and_report_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", "--impl", "planted.sparse_ce_last_label", "--budget", "40",
                 "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "planted.sparse_ce_last_label sparse_softmax_cross_entropy float32 forward: 40 calls" \
        in text and "worst cases:" in text
    page = (out / "report" / "search.html").read_text()
    assert "Worst inputs found" in page and "planted.sparse_ce_last_label" in page
    assert f"--suite {out / WORST_CASES}" in page
    assert len(store.load(out)) == 40


def test_cli_search_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    assert main(["search", "--impl", "nothing.matches", "--budget", "5",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softmax-bench: error:") and "\n" not in err
