"""harness.planning.suites: built-in suites, TOML suite files, one-line errors with file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.planning import cases as C
from harness.planning.suites import BUILTIN_NAMES, Suite, SuiteEntry, get_suite, load_suite_file

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "suites" / "example.toml"
DOCS = REPO_ROOT / "docs" / "suites.md"


def test_builtin_suites() -> None:
    assert BUILTIN_NAMES == ("quick", "stability", "full", "throughput")
    for name in BUILTIN_NAMES:
        suite = get_suite(name)
        assert isinstance(suite, Suite) and suite.name == name and suite.source == "builtin"
        assert suite.description and suite.entries
        assert get_suite(name) is suite  # built once


def test_unknown_suite_name_lists_the_builtins() -> None:
    with pytest.raises(ConfigError) as info:
        get_suite("quik")
    assert str(info.value) == (
        "unknown suite 'quik'; expected one of quick, stability, full, throughput, or a path "
        "to a .toml suite file"
    )


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^cannot read suite file nope/x\.toml: No such file"):
        get_suite("nope/x.toml")


def test_entry_defaults_are_the_familys_dtypes_and_ops(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[cases]]\nfamily = "long_row_low_precision"\n'
                    '[[cases]]\nfamily = "nan_in_row"\nops = "softmax"\ndtypes = "float64"\n')
    suite = get_suite(str(path))
    assert suite.name == "s" and suite.source == str(path)
    first, second = suite.entries
    assert first == SuiteEntry("long_row_low_precision", {}, ("float16", "bfloat16"),
                               C.FAMILIES["long_row_low_precision"].ops)
    assert second == SuiteEntry("nan_in_row", {}, ("float64",), ("softmax",))


def test_entry_params_are_read_only() -> None:
    entry = get_suite("quick").entries[1]
    with pytest.raises(TypeError):
        entry.params["C"] = (1,)  # type: ignore[index]


def test_the_example_loads() -> None:
    suite = get_suite(str(EXAMPLE))
    assert suite.name == "llm-vocab" and suite.source == str(EXAMPLE)
    quick = get_suite("quick").entries
    assert suite.entries[: len(quick)] == quick  # include = ["quick"] comes first
    rn, dom, lswi = suite.entries[len(quick):]
    assert rn == SuiteEntry("random_normal",
                            {"sigma": (1.0, 10.0), "C": (32000, 128256), "rows": 2,
                             "anchor": False},
                            ("float32", "bfloat16"),
                            ("softmax", "log_softmax", "sparse_softmax_cross_entropy"))
    assert dom.params == {"gap": (20.0, "g_1"), "C": (2, 50257)}
    assert lswi.params == {"eps": (0.0, 0.1), "reduction": ("mean",), "errors": False}
    cases = list(C.generate(suite))
    assert {c.case_id for c in cases if c.family == "random_normal" and c.n_classes == 128256} \
        == {"random_normal[sigma=1,C=128256,N=2]", "random_normal[sigma=10,C=128256,N=2]"}


def test_the_docs_example_and_family_table() -> None:
    text = DOCS.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    path = Path(DOCS.parent, "..", "examples", "suites", "example.toml")
    assert path.exists()
    for family in C.FAMILIES.values():
        row = re.search(rf"^\| `{family.name}` \|.*$", text, re.M)
        assert row is not None, f"docs/suites.md has no row for {family.name}"
        for param in family.params:
            assert f"`{param.name}`" in row.group(0), (family.name, param.name)
    for name in C.NOT_GENERATED:
        assert f"`{name}`" in text


def test_docs_example_block_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    path = tmp_path / "docs-example.toml"
    path.write_text(block.group(1))
    assert get_suite(str(path)).name == "llm-vocab"


def test_repeated_entries_add_nothing(tmp_path: Path) -> None:
    once = tmp_path / "once.toml"
    once.write_text('[[cases]]\nfamily = "pos_inf"\n')
    twice = tmp_path / "twice.toml"
    twice.write_text('[[cases]]\nfamily = "pos_inf"\n[[cases]]\nfamily = "pos_inf"\n'
                     'params = { C = [3] }\n')
    n_once = len(list(C.generate(get_suite(str(once)))))
    assert n_once == len(list(C.generate(get_suite(str(twice))))) == 2 * 5 * 4


def test_rows_pads_the_cases_of_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "padded.toml"
    path.write_text('[[cases]]\nfamily = "pos_inf"\nrows = 8\nparams = { C = [2] }\n')
    suite = get_suite(str(path))
    assert suite.entries[0].rows == 8
    assert {(c.case_id, c.shape) for c in C.generate(suite)} == {("pos_inf[C=2,rows=8]", (8, 2))}


# Each malformed file: (TOML text, the expected error after "FILE:").
MALFORMED = {
    "unknown dtype": (
        'name = "x"\n\n[[cases]]\nfamily = "smoke_small"\n\n[[cases]]\nfamily = "pos_inf"\n\n'
        '[[cases]]\nfamily = "nan_in_row"\ndtypes = ["float32", "float8"]\n',
        "11: cases[2].dtypes: unknown dtype 'float8'; expected one of float16, bfloat16, "
        "float32, float64",
    ),
    "dtype in a multi-line array": (
        '[[cases]]\nfamily = "nan_in_row"\ndtypes = [\n  "float32",\n  "float8",\n]\n',
        "3: cases[0].dtypes: unknown dtype 'float8'; expected one of float16, bfloat16, "
        "float32, float64",
    ),
    "unknown family": (
        '# a comment\n[[cases]]\nfamily = "softmax_fun"\n',
        "3: cases[0].family: unknown family 'softmax_fun'; expected one of "
        + ", ".join(C.FAMILIES),
    ),
    "family not generated": (
        '[[cases]]\nfamily = "gpu_width_sweep"\n',
        "2: cases[0].family: family 'gpu_width_sweep' is not generated here: it is GPU-only "
        "(kernel-selection widths)",
    ),
    "missing family": (
        'description = "d"\n[[cases]]\ndtypes = ["float32"]\n',
        "2: cases[0].family: missing; every [[cases]] table names a family",
    ),
    "unknown entry key": (
        '[[cases]]\nfamily = "random_normal"\ncolour = "red"\n',
        "3: cases[0].colour: unknown key; expected one of family, dtypes, ops, params, rows",
    ),
    "rows not a positive integer": (
        '[[cases]]\nfamily = "pos_inf"\nrows = 0\n',
        "3: cases[0].rows: expected an integer >= 1, got 0",
    ),
    "rows a string": (
        '[[cases]]\nfamily = "pos_inf"\nrows = "8"\n',
        "3: cases[0].rows: expected an integer >= 1, got '8'",
    ),
    "unknown top-level key": (
        'name = "x"\nsuite = "quick"\n',
        "2: suite: unknown key; expected one of name, description, kind, include, timing, cases",
    ),
    "wrong type at top level": (
        "description = 5\n",
        "1: description: expected a string, got integer",
    ),
    "cases not an array of tables": (
        'cases = "all"\n',
        "1: cases: expected an array of tables ([[cases]])",
    ),
    "empty suite": (
        'name = "empty"\n',
        "1: cases: the suite has no cases; add [[cases]] tables or include",
    ),
    "unknown include": (
        'include = ["quick", "slow"]\n',
        "1: include: unknown suite 'slow'; expected one of quick, stability, full, throughput",
    ),
    "dtypes of the wrong type": (
        '[[cases]]\nfamily = "random_normal"\ndtypes = 3\n',
        "3: cases[0].dtypes: expected a string or a list of strings, got integer",
    ),
    "empty dtypes": (
        '[[cases]]\nfamily = "random_normal"\ndtypes = []\n',
        "3: cases[0].dtypes: expected at least one dtype",
    ),
    "repeated dtype": (
        '[[cases]]\nfamily = "random_normal"\ndtypes = ["float32", "float32"]\n',
        "3: cases[0].dtypes: a dtype is listed twice",
    ),
    "unknown op": (
        '[[cases]]\nfamily = "random_normal"\nops = ["softmax", "gelu"]\n',
        "3: cases[0].ops: unknown op 'gelu'; expected one of softmax, log_softmax, logsumexp, "
        "softmax_cross_entropy, sparse_softmax_cross_entropy, cross_entropy",
    ),
    "op the family does not apply to": (
        '[[cases]]\nfamily = "pos_inf"\n[[cases]]\nfamily = "soft_labels_off_simplex"\n'
        'ops = "softmax"\n',
        "5: cases[1].ops: op 'softmax' does not apply to family 'soft_labels_off_simplex'; "
        "expected one of softmax_cross_entropy",
    ),
    "params not a table": (
        '[[cases]]\nfamily = "random_normal"\nparams = [1, 2]\n',
        "3: cases[0].params: expected a table, got array",
    ),
    "unknown parameter (inline table)": (
        '[[cases]]\nfamily = "random_normal"\nparams = { sigma = [1.0], width = 3 }\n',
        "3: cases[0].params.width: unknown parameter of family 'random_normal'; expected one "
        "of sigma, C, rows, anchor",
    ),
    "parameter of a family that takes none": (
        '[[cases]]\nfamily = "smoke_small"\nparams = { C = 3 }\n',
        "3: cases[0].params.C: unknown parameter of family 'smoke_small'; it takes no "
        "parameters",
    ),
    "wrong parameter type ([cases.params] table)": (
        '[[cases]]\nfamily = "random_normal"\n\n[cases.params]\nC = [10]\nsigma = [1.0, "x"]\n',
        "6: cases[0].params.sigma: expected a number >= 0, got string 'x'",
    ),
    "list for a single parameter": (
        '[[cases]]\nfamily = "random_normal"\n[cases.params]\nrows = [2, 3]\n',
        "4: cases[0].params.rows: expected a single integer >= 1, got an array",
    ),
    "parameter out of range (dotted key)": (
        '[[cases]]\nfamily = "label_smoothing_weight_ignore"\nparams.eps = [0.1, 1.5]\n',
        "3: cases[0].params.eps: expected a number >= 0 and <= 1, got float 1.5",
    ),
    "unknown parameter value": (
        '[[cases]]\nfamily = "masked_large_values"\nparams = { mask = ["-1e99"] }\n',
        "3: cases[0].params.mask: unknown value '-1e99'; expected one of 'finfo.min', '-1e9', "
        "'-1e4'",
    ),
    "unknown symbolic number": (
        '[[cases]]\nfamily = "dominant_logit"\nparams = { gap = ["g_2"] }\n',
        "3: cases[0].params.gap: expected a number >= 0 or one of 'g_1', '-L_sub', got string "
        "'g_2'",
    ),
    "bool for an int": (
        '[[cases]]\nfamily = "uniform_row"\nparams = { C = [true] }\n',
        "3: cases[0].params.C: expected an integer >= 1, got boolean True",
    ),
    "second entry, later table": (
        '[[cases]]\nfamily = "pos_inf"\n\n[[cases]]\nfamily = "pos_inf"\n[cases.params]\n'
        'C = [4]\n',
        "7: cases[1].params.C: unknown value 4; expected one of 2, 3",
    ),
    "TOML syntax error": (
        '[[cases]]\nfamily = "random_normal"\ndtypes = ["float32",, "float64"]\n',
        "3: cases[0].dtypes: invalid TOML: Invalid value (column 21)",
    ),
    "TOML duplicate key": (
        'name = "a"\nname = "b"\n',
        "2: name: invalid TOML: Cannot overwrite a value (column 11)",
    ),
    "TOML unclosed array": (
        '[[cases]]\nfamily = "random_normal"\ndtypes = ["float32"\n',
        "3: cases[0].dtypes: invalid TOML: Unclosed array at the end of the file",
    ),
}


@pytest.mark.parametrize("text,expected", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_file_gives_one_line_with_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "x.toml").write_text(text)
    shown = "suites/x.toml"
    with pytest.raises(ConfigError) as info:
        load_suite_file(suites / "x.toml", shown=shown)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"{shown}:{expected}"


def test_get_suite_names_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    Path("suites").mkdir()
    Path("suites/x.toml").write_text('[[cases]]\nfamily = "pos_inf"\ndtypes = ["float8"]\n')
    with pytest.raises(ConfigError, match=r"^suites/x\.toml:3: cases\[0\]\.dtypes: unknown "):
        get_suite("suites/x.toml")
