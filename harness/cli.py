"""The `softmax-bench` command (also `python -m harness`).

Exit codes: 0 success; 2 a `HarnessError` (bad command line, config, store, plugin or reference
problem), reported as one line on stderr without a traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from harness import __version__
from harness.errors import HarnessError, UsageError
from harness.frameworks import FrameworkStatus, framework_statuses

PROG = "softmax-bench"


class _ArgumentParser(argparse.ArgumentParser):
    """Turns argparse's own exit into a `UsageError`, so every error leaves through `main`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned plain-text columns, two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join(line(cells) for cells in [header, *rows])


def _framework_row(status: FrameworkStatus) -> list[str]:
    return [
        status.name,
        "available" if status.available else "unavailable",
        status.version or "-",
        status.reason,
    ]


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    rows = [_framework_row(status) for status in framework_statuses()]
    print("Frameworks", file=out)
    print(format_table(["framework", "status", "version", "reason"], rows), file=out)
    return 0


def _cmd_version(args: argparse.Namespace, out: TextIO) -> int:
    print(f"{PROG} {__version__}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Benchmark and verify softmax-family implementations against an exact "
        "reference.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    list_parser = commands.add_parser(
        "list", help="frameworks (later: implementations) with availability and reason"
    )
    list_parser.set_defaults(handler=_cmd_list)
    version_parser = commands.add_parser("version", help="print the softmax-bench version")
    version_parser.set_defaults(handler=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return the exit code."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and friends print, then exit
            if isinstance(exc.code, int):
                return exc.code
            return 0 if exc.code is None else 1
        handler = args.handler
        code: int = handler(args, sys.stdout)
        return code
    except HarnessError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
