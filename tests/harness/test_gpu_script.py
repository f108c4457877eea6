"""scripts/gpu-suite.sh gets one try on a lent GPU: what it names must exist before it goes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.engine.workers import list_implementations
from harness.planning import suites

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-suite.sh"


def _script_impls() -> list[str]:
    block = re.search(r"^impls=\((.*?)^\)", SCRIPT.read_text(), re.S | re.M)
    assert block, "no impls=( ... ) array in scripts/gpu-suite.sh"
    return block.group(1).split()


def test_the_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_implementation_it_names_exists_and_runs_on_cuda() -> None:
    catalog = {i.name: i for i in list_implementations().implementations}
    names = _script_impls()
    assert len(names) == 12
    for name in names:
        assert name in catalog, f"{name} is not a registered implementation"
        assert "cuda" in catalog[name].devices, name
        assert {"float32", "bfloat16", "float16"} <= set(catalog[name].dtypes), name


def test_its_suites_load() -> None:
    accuracy = suites.get_suite(str(ROOT / "scripts" / "gpu" / "accuracy.toml"))
    throughput = suites.get_suite(str(ROOT / "scripts" / "gpu" / "throughput.toml"))
    assert accuracy.kind == "accuracy" and throughput.kind == "throughput"
    families = {e.family for e in accuracy.entries}
    assert {"large_offset", "dominant_logit", "labels_out_of_range"} <= families
