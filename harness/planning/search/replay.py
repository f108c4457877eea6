"""``DIR/worst-cases.toml``: the search's findings as a suite file that replays them.

Each finding is one ``explicit_rows`` entry (docs/suites.md): the row, its labels and its
cotangent written out exactly (``DTYPE:NxC:DATA`` strings), its dtype and op, and the status
it was judged with, so ``softmax-bench run --suite DIR/worst-cases.toml --impl X`` runs the
same bits through the same scorer and gives the same verdict. A search that found nothing for
an implementation writes its worst passing row instead (marked so in the comment).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.planning.cases.explicit import EXPLICIT_FAMILY, encode_array, row_status
from harness.vocabulary import DENSE_CE, LOG_SOFTMAX, LOGSUMEXP, SOFTMAX, SPARSE_CE

if TYPE_CHECKING:
    from harness.planning.search.planner import SearchPlanner
    from harness.planning.search.strategy import Scored

SEARCH_OPS: tuple[str, ...] = (SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, DENSE_CE, SPARSE_CE)
WORST_CASES = "worst-cases.toml"


def replay_name(seed: int, scored: Scored, pass_: str) -> str:
    """The ``name`` of a finding's entry: its case is ``explicit_rows[name=...]``."""
    c = scored.candidate
    return f"search-s{seed}-n{c.index}-{c.digest}-{pass_}"


def _string(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these characters


def _comment(text: Any) -> str:
    return " ".join(str(text).split())[:300]


def entries(planner: SearchPlanner) -> list[dict[str, Any]]:
    """Every finding to replay, worst first per (implementation, op, dtype, pass)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for (impl, op, dtype, pass_), searcher in planner.searchers.items():
        chosen = list(searcher.findings) or ([searcher.best_pass] if searcher.best_pass else [])
        for scored in chosen:
            name = replay_name(planner.opts.seed, scored, pass_)
            if (name, dtype, op) in seen:
                continue
            seen.add((name, dtype, op))
            row = scored.candidate.row
            params = {"name": name, "x": encode_array(row.x)}
            if row.labels is not None:
                params["labels"] = encode_array(row.labels)
            if row.targets is not None:
                params["targets"] = encode_array(row.targets)
            if row.cotangent is not None:
                params["cotangent"] = encode_array(row.cotangent)
            params["status"] = row_status(op, pass_, row.x)
            out.append({"implementation": impl, "op": op, "dtype": dtype, "pass": pass_,
                        "found": bool(searcher.findings), "scored": scored, "params": params})
    return out


def render(planner: SearchPlanner) -> str:
    o = planner.opts
    lines = [
        "# softmax-bench worst cases, written by `softmax-bench search`.",
        f"# Replay: softmax-bench run --suite {o.out / WORST_CASES} --impl IMPL",
        "# Each entry is one row the search ran (family explicit_rows, docs/suites.md).",
        f"name = {_string('worst-cases')}",
        f"description = {_string(f'worst inputs found by softmax-bench search (seed {o.seed}, budget {o.budget})')}",  # noqa: E501
        "",
    ]
    for e in entries(planner):
        s = e["scored"]
        f = s.fields
        verdict = f.get("verdict")
        what = "finding" if e["found"] else "no failure found; worst passing row"
        lines += [
            f"# {e['implementation']} {e['op']} {e['dtype']} {e['pass']}: {what}: {verdict}",
            f"# search candidate {s.candidate.index} ({s.candidate.origin}), "
            f"C={s.candidate.row.x.shape[-1]}, limit ratio {f.get('limit_ratio')}",
            f"# {_comment(f.get('score_message') or f.get('message') or '')}",
            f"# search parameters: {_comment(json.dumps(s.candidate.params, sort_keys=True))}",
            "[[cases]]",
            f"family = {_string(EXPLICIT_FAMILY)}",
            f"dtypes = [{_string(e['dtype'])}]",
            f"ops = [{_string(e['op'])}]",
            "[cases.params]",
            *(f"{k} = {_string(v)}" for k, v in e["params"].items()),
            "",
        ]
    return "\n".join(lines)


def write_worst_cases(out: Path, planner: SearchPlanner) -> Path | None:
    """Write ``out/worst-cases.toml`` atomically; None when nothing was run yet."""
    if not any(s.calls for s in planner.searchers.values()):
        return None
    path = Path(out) / WORST_CASES
    text = render(planner)
    fd, tmp = tempfile.mkstemp(prefix=".worst-cases.", dir=str(out))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def replay_mismatches(search_dir: str | os.PathLike[str], replay_dir: str | os.PathLike[str]
                      ) -> tuple[int, list[str]]:
    """Compare a search's worst-cases with a run of its ``worst-cases.toml``: every written
    row's replayed record must have the search record's verdict. Returns (rows checked, one
    line per mismatch)."""
    from harness import store

    found = store.load(search_dir)
    again = store.load(replay_dir)
    replayed = {(r["implementation"], r["op"], r["pass"], r["dtype"], r["case"]): r
                for r in again.to_dict("records")}
    checked, problems = 0, []
    for r in found[found["case_family"] == "search"].to_dict("records"):
        search = r.get("search")
        if not isinstance(search, dict) or "index" not in search:
            continue
        digest = str(r["case"]).rsplit("row=", 1)[-1].rstrip("]")
        name = f"search-s{search['seed']}-n{search['index']}-{digest}-{r['pass']}"
        key = (r["implementation"], r["op"], r["pass"], r["dtype"],
               f"{EXPLICIT_FAMILY}[name={name}]")
        if key not in replayed:
            continue  # not one of the rows written
        checked += 1
        want, got = r.get("verdict"), replayed[key].get("verdict")
        if want != got:
            problems.append(f"{key[0]} {key[4]}: search {want}, replay {got}")
    return checked, problems
