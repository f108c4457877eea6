"""The `softmax-bench` command (also `python -m harness`).

Exit codes: 0 success; 2 a `HarnessError` (bad command line, config, store, plugin or reference
problem), reported as one line on stderr without a traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from harness import __version__
from harness.errors import ConfigError, HarnessError, UsageError
from harness.frameworks import FrameworkStatus, framework_statuses
from harness.messages import Catalog
from harness.vocabulary import DEVICES, DTYPE_NAMES, OP_NAMES

PROG = "softmax-bench"
INTERRUPTED = 130  # the shell's code for a Ctrl-C (128 + SIGINT)


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
    from harness.engine.workers import list_implementations

    statuses = {status.name: status for status in framework_statuses()}
    rows = [_framework_row(status) for status in statuses.values()]
    print("Frameworks", file=out)
    print(format_table(["framework", "status", "version", "reason"], rows), file=out)
    catalog = list_implementations()
    impl_rows = []
    for impl in catalog.implementations:
        status = statuses.get(impl.framework)
        available = status is None or status.available
        impl_rows.append([impl.name, impl.op, ",".join(impl.dtypes),
                          "available" if available else "unavailable",
                          "" if available or status is None else status.reason])
    print("\nImplementations", file=out)
    print(format_table(["implementation", "op", "dtypes", "status", "reason"], impl_rows),
          file=out)
    for error in catalog.errors:
        print(f"{PROG}: warning: {error}", file=sys.stderr)
    return 0


def _fn_catalog(args: argparse.Namespace) -> Catalog | None:
    """``--fn MODULE:FUNCTION --op OP [--framework NAME]``: the catalog with those functions,
    listed by a worker process (which imports them: the parent imports no user code), or None
    without --fn. A function that does not import is one line and exit 2."""
    if not args.fn:
        if args.op or args.framework:
            raise UsageError("--op and --framework go with --fn MODULE:FUNCTION")
        return None
    import os

    from harness import registry
    from harness.engine.workers import list_implementations
    from harness.frameworks import all_frameworks

    if not args.op:
        raise UsageError("--fn needs --op (softmax, log_softmax, logsumexp, ...)")
    framework = args.framework or "numpy"
    known = [f.name for f in all_frameworks()]
    if framework not in known:
        raise UsageError(f"--framework {framework!r}: expected one of {', '.join(known)}")
    specs = [registry.FnSpec(target, args.op, framework, os.getcwd()) for target in args.fn]
    if len({s.target for s in specs}) != len(specs):
        raise UsageError("the same --fn is given twice")
    # the workers (and the listing) inherit this process's environment
    os.environ[registry.FN_ENV] = registry.encode_fn_specs(specs)
    catalog = list_implementations()
    names = {i.name for i in catalog.implementations}
    for spec in specs:
        if spec.target not in names:
            why = next((e for e in catalog.errors if spec.target in e),
                       f"--fn {spec.target}: not found ({'; '.join(catalog.errors) or 'no error'})")
            raise ConfigError(why)
    return catalog


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from harness.engine.progress import progress_bar
    from harness.planning.request import RunOptions
    from harness.run import run_suite

    if args.retry_skipped and not args.resume:
        raise UsageError("--retry-skipped goes with --resume (it reruns a run's skipped tasks)")
    if args.keep_outputs_up_to < 0:
        raise UsageError(f"--keep-outputs-up-to must be 0 or more, got {args.keep_outputs_up_to}")
    dtypes = tuple(args.dtype or ())
    catalog = _fn_catalog(args)  # --fn MODULE:FUNCTION: None without
    if catalog is not None:  # run the functions (and whatever --impl selects besides)
        args.impl = [*(args.impl or []), *args.fn]
    opts = RunOptions(suite=args.suite, include=tuple(args.impl or ()),
                      exclude=tuple(args.exclude or ()), device=args.device, dtypes=dtypes,
                      timeout=args.timeout, out=Path(args.out), resume=args.resume,
                      retry_skipped=args.retry_skipped, max_timeouts=args.max_timeouts,
                      threads=args.threads, jobs=args.jobs,
                      reference_jobs=args.reference_jobs,
                      keep_outputs_up_to=args.keep_outputs_up_to,
                      executor=args.executor, ray_address=args.ray_address)
    try:
        with progress_bar(enabled=not args.quiet) as progress:
            path, counts, plan = run_suite(opts, progress=progress, catalog=catalog)
    except KeyboardInterrupt:
        if not (Path(args.out) / "run.json").exists():  # stopped while planning
            raise
        print(f"{PROG}: interrupted: the records so far are kept in {args.out}; run the same "
              "command with --resume to finish the run", file=sys.stderr)
        return INTERRUPTED
    for error in plan.plugin_errors:
        print(f"{PROG}: warning: {error}", file=sys.stderr)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"run directory: {path} ({summary})", file=out)
    if not args.no_report:
        from reports import build_report

        site = build_report([path], path / "report")
        print(f"report: {site}", file=out)
    return 0


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from reports import build_report, build_single_file

    if args.single_file is not None:
        print(f"report: {build_single_file(args.runs, args.single_file, baseline=args.baseline)}",
              file=out)
    if args.out is not None or args.single_file is None:
        site = build_report(args.runs, args.out or "site", baseline=args.baseline)
        print(f"report: {site}", file=out)
    return 0


def _cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    from harness import store as results
    from harness.store import compare

    if args.min_factor < 1.0:
        raise UsageError(f"--min-factor must be >= 1, got {args.min_factor:g}")
    if not 0.0 < args.alpha < 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha:g}")
    base, new = results.load(args.base), results.load(args.new)
    table = compare.compare(base, new, alpha=args.alpha, min_factor=args.min_factor)
    counts = compare.regression_counts(table)
    print(compare.format_report(table), file=out)
    if not sum(counts.values()):
        print("no regressions", file=out)
        return 0
    print(f"{sum(counts.values())} regression(s): {counts['accuracy']} accuracy, "
          f"{counts['timing']} timing", file=out)
    # Accuracy is deterministic: a regression always fails. Timing fails on request (CI).
    return 1 if counts["accuracy"] or (counts["timing"] and args.fail_on_regression) else 0


def _cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from harness.engine.progress import progress_bar
    from harness.planning.search import WORST_CASES, SearchOptions, run_search

    opts = SearchOptions(include=tuple(args.impl or ()), exclude=tuple(args.exclude or ()),
                         ops=tuple(args.op or ()), dtypes=tuple(args.dtype or ("float32",)),
                         passes=tuple(args.pass_ or ("forward",)), budget=args.budget,
                         seed=args.seed, strategy=args.strategy, timeout=args.timeout,
                         device=args.device, out=Path(args.out), jobs=args.jobs,
                         threads=args.threads, max_timeouts=args.max_timeouts)
    suite = Path(args.out) / WORST_CASES
    try:
        with progress_bar(enabled=not args.quiet) as progress:
            path, counts, planner = run_search(opts, progress=progress)
    except KeyboardInterrupt:
        if not (Path(args.out) / "run.json").exists():  # stopped while planning
            raise
        print(f"{PROG}: interrupted: the candidates so far are kept in {args.out}"
              + (f" and the findings so far in {suite}" if suite.exists() else ""),
              file=sys.stderr)
        return INTERRUPTED
    for error in planner.plugin_errors:
        print(f"{PROG}: warning: {error}", file=sys.stderr)
    for s in planner.summary():
        found = (f"{s['findings']} finding(s), worst {s['worst_verdict']}, first after "
                 f"{s['first_finding_call']} call(s)" if s["findings"]
                 else f"no failure (worst limit ratio {s['worst_limit_ratio']})")
        print(f"{s['implementation']} {s['op']} {s['dtype']} {s['pass']}: {s['calls']} calls, "
              f"{found}", file=out)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"run directory: {path} ({summary})", file=out)
    if suite.exists():
        print(f"worst cases: {suite} (replay: {PROG} run --suite {suite} --impl IMPL)", file=out)
    if not args.no_report:
        from reports import build_report

        print(f"report: {build_report([path], path / 'report')}", file=out)
    return 0


def _cmd_merge(args: argparse.Namespace, out: TextIO) -> int:
    from harness.store import merge

    result = merge.merge(args.runs, args.out, prefer=args.prefer)
    if result.conflicts:
        print(merge.format_conflicts(result.conflicts), file=out)
        print(f"{PROG}: error: {len(result.conflicts)} conflicting duplicate record(s) (the "
              "same task on the same machine with different results); nothing written; "
              "choose with --prefer first|last|RUN_DIR", file=sys.stderr)
        return 1
    print(f"merged run: {result.out} ({result.records} records from {len(result.parts)} "
          f"run(s); {result.duplicates} duplicate(s) removed, {result.resolved} conflict(s) "
          f"settled by --prefer)", file=out)
    return 0


def _cmd_rescore(args: argparse.Namespace, out: TextIO) -> int:
    from harness.engine.progress import progress_bar
    from harness.rescore import check_paths, rescore

    check_paths(args.run, args.out)  # bad input: one line, before the progress bar
    with progress_bar(enabled=not args.quiet) as progress:
        result = rescore(args.run, args.out, suite=args.suite,
                         reference_jobs=args.reference_jobs, progress=progress)
    for line in result.lines():
        print(line, file=out)
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
        "list", help="frameworks and implementations, with availability and reason"
    )
    list_parser.set_defaults(handler=_cmd_list)
    run = commands.add_parser("run", help="run a suite and write a run directory")
    run.add_argument("--suite", default="quick",
                     help="quick | full | stability | throughput | FILE.toml (default quick)")
    run.add_argument("--impl", action="append", metavar="GLOB",
                     help="only implementations matching GLOB (repeatable)")
    run.add_argument("--exclude", action="append", metavar="GLOB",
                     help="skip implementations matching GLOB (repeatable)")
    run.add_argument("--device", default="cpu", choices=list(DEVICES))
    run.add_argument("--dtype", action="append", choices=list(DTYPE_NAMES),
                     help="only this dtype (repeatable; default all)")
    run.add_argument("--timeout", type=float, default=120.0,
                     help="seconds one implementation call may take (default 120)")
    run.add_argument("--threads", type=int, default=None,
                     help="intra-op threads, set equal in every framework")
    run.add_argument("--jobs", type=int, default=2,
                     help="framework workers running at once (default 2)")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: worker processes here; ray: worker processes in Ray actors "
                          "(docs/cluster.md; default local)")
    run.add_argument("--ray-address", metavar="ADDR", default=None,
                     help="with --executor ray: the cluster to join (HOST:PORT, ray://HOST:PORT "
                          "or auto; default: a local Ray cluster for the run)")
    run.add_argument("--out", default="runs/latest", help="run directory (default runs/latest)")
    run.add_argument("--resume", action="store_true",
                     help="finish an interrupted run in --out without redoing finished records")
    run.add_argument("--reference-jobs", type=int, default=None, metavar="N",
                     help="processes computing the exact references ahead (default: one per "
                          "CPU; 0: in this process)")
    run.add_argument("--keep-outputs-up-to", type=int, default=65536, metavar="N",
                     help="keep each implementation's raw output of at most N elements in the "
                          "run directory, for `rescore` (default 65536; 0: none)")
    run.add_argument("--retry-skipped", action="store_true",
                     help="with --resume: run again the tasks skipped after repeated timeouts")
    run.add_argument("--max-timeouts", type=int, default=3, metavar="K",
                     help="after K timeouts in a row, skip the rest of that implementation's "
                          "tasks in that dtype (default 3)")
    run.add_argument("--no-report", action="store_true", help="do not build the HTML report")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--fn", action="append", metavar="MODULE:FUNCTION",
                     help="score this function (no plugin package needed; repeatable); MODULE "
                          "is imported from the current directory or PYTHONPATH")
    run.add_argument("--op", choices=list(OP_NAMES),
                     help="with --fn: the op the functions implement")
    run.add_argument("--framework", metavar="NAME",
                     help="with --fn: the framework whose tensors the functions take "
                          "(default numpy)")
    run.set_defaults(handler=_cmd_run)
    report = commands.add_parser("report", help="build the HTML report of one or more runs")
    report.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories (several merge into one report, e.g. a CPU "
                             "run and a GPU run)")
    report.add_argument("--out", default=None, metavar="SITE",
                        help="directory of the static site (default site, unless only "
                             "--single-file is given; an earlier report there is replaced)")
    report.add_argument("--single-file", default=None, metavar="FILE.html",
                        help="also (or, without --out, only) write the whole report as one "
                             "self-contained HTML file: every page, plotly.js inlined, opens "
                             "offline")
    report.add_argument("--baseline", action="append", metavar="RUN_DIR",
                        help="baseline run directory for a comparison page (repeatable)")
    report.set_defaults(handler=_cmd_report)
    cmp_parser = commands.add_parser("compare", help="regressions of NEW against BASE")
    cmp_parser.add_argument("base", help="baseline run directory")
    cmp_parser.add_argument("new", help="new run directory")
    cmp_parser.add_argument("--fail-on-regression", action="store_true",
                            help="exit 1 on a timing regression too (accuracy regressions "
                                 "always exit 1)")
    cmp_parser.add_argument("--min-factor", type=float, default=1.1, metavar="F",
                            help="a timing regression is at least F times slower (default 1.1)")
    cmp_parser.add_argument("--alpha", type=float, default=0.002, metavar="P",
                            help="... and a Mann-Whitney U test on the raw samples gives p < P "
                                 "(default 0.002)")
    cmp_parser.set_defaults(handler=_cmd_compare)
    search = commands.add_parser(
        "search", help="search for the inputs with the worst outcome (docs/search.md)")
    search.add_argument("--impl", action="append", metavar="GLOB",
                        help="only implementations matching GLOB (repeatable)")
    search.add_argument("--exclude", action="append", metavar="GLOB",
                        help="skip implementations matching GLOB (repeatable)")
    search.add_argument("--op", action="append", metavar="OP",
                        help="only implementations of this op (repeatable)")
    search.add_argument("--dtype", action="append", choices=list(DTYPE_NAMES),
                        help="dtype to search (repeatable; default float32)")
    search.add_argument("--pass", dest="pass_", action="append",
                        choices=["forward", "backward"],
                        help="pass to search (repeatable; default forward)")
    search.add_argument("--budget", type=int, required=True, metavar="N",
                        help="implementation calls per (implementation, op, dtype, pass)")
    search.add_argument("--seed", type=int, default=0, metavar="S",
                        help="the search's seed: the same seed, the same candidates (default 0)")
    search.add_argument("--strategy", choices=["structured", "random"], default="structured",
                        help="structured rows and refinement, or plain random rows (baseline)")
    search.add_argument("--device", default="cpu", choices=list(DEVICES))
    search.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one call may take; longer is a hang, a finding "
                             "(default 60)")
    search.add_argument("--max-timeouts", type=int, default=3, metavar="K",
                        help="after K hangs in a row, stop that search (default 3)")
    search.add_argument("--threads", type=int, default=None,
                        help="intra-op threads, set equal in every framework")
    search.add_argument("--jobs", type=int, default=2,
                        help="searches running at once (default 2)")
    search.add_argument("--out", required=True, metavar="DIR",
                        help="run directory; DIR/worst-cases.toml replays the findings")
    search.add_argument("--no-report", action="store_true", help="do not build the HTML report")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    search.set_defaults(handler=_cmd_search)
    merge_parser = commands.add_parser(
        "merge", help="merge run directories (one per machine, say) into one")
    merge_parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    merge_parser.add_argument("--out", required=True, metavar="MERGED",
                              help="the merged run directory (must not exist or be empty)")
    merge_parser.add_argument("--prefer", metavar="first|last|RUN_DIR", default=None,
                              help="which record to keep where two runs of one machine "
                                   "disagree on a task (default: report them and write "
                                   "nothing)")
    merge_parser.set_defaults(handler=_cmd_merge)
    rescore_parser = commands.add_parser(
        "rescore", help="re-judge a run under the current scoring, running nothing again")
    rescore_parser.add_argument("run", metavar="RUN_DIR", help="the run directory to re-judge")
    rescore_parser.add_argument("--out", required=True, metavar="NEW_DIR",
                                help="the rescored run directory (must not exist or be empty)")
    rescore_parser.add_argument("--suite", default=None, metavar="FILE.toml",
                                help="the run's suite, where run.json's no longer reads (a "
                                     "suite file that moved)")
    rescore_parser.add_argument("--reference-jobs", type=int, default=None, metavar="N",
                                help="processes computing the exact references (default: one "
                                     "per CPU; 0: in this process)")
    rescore_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    rescore_parser.set_defaults(handler=_cmd_rescore)
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
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED
