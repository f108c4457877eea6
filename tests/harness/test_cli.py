"""The `softmax-bench` command line: `list`, `version`, and one-line errors with exit code 2."""

import functools
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness import cli
from harness.errors import ConfigError
from harness.frameworks import framework_statuses
from harness.vocabulary import FRAMEWORK_LIST as FRAMEWORKS

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_FRAMEWORKS = ("torch", "tensorflow", "jax", "scipy")


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def framework_lines(output: str) -> dict[str, str]:
    """The `list` output's line for each known framework, keyed by framework name."""
    names = {fw.name for fw in FRAMEWORKS}
    lines = {}
    for line in output.splitlines():
        first = line.split(" ", 1)[0]
        if first in names:
            lines[first] = line
    return lines


def assert_lists_every_framework(output: str) -> None:
    lines = framework_lines(output)
    assert set(lines) == {fw.name for fw in FRAMEWORKS}, output
    for fw in FRAMEWORKS:
        line = lines[fw.name]
        if importlib.util.find_spec(fw.module) is None:
            assert " unavailable " in line, line
            assert f"not installed: {fw.install_hint}" in line, line
        else:
            assert " available " in line, line


def test_list_shows_each_framework_with_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert_lists_every_framework(captured.out)


def test_list_shows_version_of_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    line = framework_lines(capsys.readouterr().out)["numpy"]
    assert importlib.metadata.version("numpy") in line


def test_list_gives_reason_for_missing_framework(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def only_numpy(name: str) -> object:
        return importlib.util.find_spec(name) if name == "numpy" else None

    monkeypatch.setattr(
        cli, "framework_statuses", functools.partial(framework_statuses, find_spec=only_numpy)
    )
    assert cli.main(["list"]) == 0
    lines = framework_lines(capsys.readouterr().out)
    assert " available " in lines["numpy"]
    assert "unavailable" in lines["torch"]
    assert "not installed: pip install 'softmax-bench[torch]'" in lines["torch"]
    assert "not installed: pip install 'softmax-bench[tensorflow]'" in lines["tensorflow"]
    assert "not installed: pip install 'softmax-bench[jax]'" in lines["jax"]
    assert "not installed: pip install 'softmax-bench[scipy]'" in lines["scipy"]


def test_list_reports_framework_without_metadata(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_metadata(dist: str) -> str:
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(
        cli, "framework_statuses", functools.partial(framework_statuses, dist_version=no_metadata)
    )
    assert cli.main(["list"]) == 0
    line = framework_lines(capsys.readouterr().out)["numpy"]
    assert " available " in line
    assert "version unknown: no package metadata" in line


def test_python_m_harness_list() -> None:
    result = run_module("list")
    assert result.returncode == 0, result.stderr
    assert_lists_every_framework(result.stdout)


def test_list_imports_no_framework() -> None:
    code = (
        "import sys; from harness.cli import main; main(['list']); "
        f"print(sorted(m for m in {HEAVY_FRAMEWORKS!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out == f"softmax-bench {harness.__version__}\n"


def test_version_matches_installed_metadata() -> None:
    try:
        installed = importlib.metadata.version("softmax-bench")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("softmax-bench is not installed in this environment")
    assert harness.__version__ == installed
    assert run_module("version").stdout == f"softmax-bench {installed}\n"


@pytest.mark.parametrize("argv", [["frobnicate"], [], ["list", "--no-such-option"]])
def test_usage_error_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("softmax-bench: error: ")
    assert captured.err.count("\n") == 1


def test_unknown_subcommand_exits_2_from_the_shell() -> None:
    result = run_module("frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("softmax-bench: error: ")
    assert "frobnicate" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "list" in out and "version" in out


def test_harness_error_becomes_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object, out: object) -> int:
        raise ConfigError("suite 'x.toml' line 3:\n unknown dtype 'float8'")

    monkeypatch.setattr(cli, "_cmd_version", broken)
    assert cli.main(["version"]) == 2
    err = capsys.readouterr().err
    assert err == "softmax-bench: error: suite 'x.toml' line 3: unknown dtype 'float8'\n"
