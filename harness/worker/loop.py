"""The worker process: runs implementations of one framework on one device.

``python -m harness.worker FRAMEWORK DEVICE`` speaks the JSON lines of ``harness.messages``: it
first writes a ``Hello`` (availability, implementations, numerics settings), then answers each
request read from stdin with a ``Reply``. An ``AccuracyTask``'s arrays travel as ``.npz`` files
(never pickle) whose paths it names; a ``TimingTask`` is a throughput measurement
(``harness.worker.timing``): the worker generates its inputs from the task's seed and shape, and
replies with the timing fields; a ``RooflineTask`` measures the copy roofline.
The worker's own stdout is moved to stderr at start so that framework chatter can never
corrupt the protocol stream. The parent never imports a framework: everything that does runs
here, and a crash, hang or CUDA error takes down only this process.

``python -m harness.worker --list`` prints every implementation's metadata (built-ins, whose
modules import no framework until called, and third-party plugins) and the plugin errors.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, TextIO

import numpy as np

from harness import arrays_io, frameworks, registry
from harness.messages import (
    AccuracyTask,
    Catalog,
    Hello,
    ImplInfo,
    Reply,
    Request,
    RooflineTask,
    Stop,
    TimingTask,
    decode_request,
    encode,
)
from harness.ops import OPS
from harness.vocabulary import BACKWARD, FRAMEWORKS


def info(impl: registry.Implementation) -> ImplInfo:
    """What the parent knows of an implementation: everything but the function."""
    return ImplInfo(impl.name, impl.op, impl.framework, tuple(impl.dtypes), tuple(impl.devices),
                    impl.description, tuple(sorted(impl.options)), impl.differentiable,
                    impl.source)


def describe(impl: registry.Implementation) -> dict[str, Any]:
    """JSON metadata of an implementation (everything but the function)."""
    return info(impl).to_json()


def all_implementations() -> tuple[list[registry.Implementation], list[str]]:
    """Built-ins of every framework (adapter plugins' frameworks included), plugins, and the
    ad-hoc functions the parent named (``registry.FN_ENV``); and the errors of rejected ones."""
    impls: list[registry.Implementation] = []
    errors: list[str] = []
    plugin_frameworks = frameworks.plugin_frameworks()
    for framework in (*FRAMEWORKS, *(f.name for f in plugin_frameworks.frameworks)):
        try:
            found = registry.framework_implementations(framework)
        except Exception as exc:  # a broken built-in module is reported, not fatal
            errors.append(f"built-ins of {framework}: {type(exc).__name__}: {exc}")
            continue
        impls.extend(found.implementations)
        errors.extend(found.errors)
    errors.extend(plugin_frameworks.errors.values())
    taken = {i.name for i in impls}
    for loaded in (registry.load_plugins(), registry.fn_implementations()):
        for impl in loaded.implementations:
            if impl.name in taken:
                errors.append(f"plugin {impl.source}: implementation name {impl.name!r} is "
                              "taken")
                continue
            taken.add(impl.name)
            impls.append(impl)
        errors.extend(loaded.errors)
    return impls, errors


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def run_task(adapter: Any, impl: registry.Implementation, task: AccuracyTask) -> Reply:
    """Run one (implementation, pass, case) and write its output array."""
    spec = OPS[impl.op]
    arrays = arrays_io.load(task.inputs_path)
    device, dtype = task.device, task.dtype
    inputs = []
    for name in spec.inputs:
        arr = arrays[name]
        # labels and probabilities share the logits' dtype; class indices stay integers
        inputs.append(adapter.to_framework(arr, dtype if arr.dtype.kind == "f" else
                                           str(arr.dtype), device))
    options = dict(task.options or {})
    if options.get("weight") is not None:
        options["weight"] = adapter.to_framework(
            np.asarray(options["weight"], dtype=np.float64), dtype, device)
    if task.pass_ == BACKWARD:
        out = adapter.backward(impl, inputs, options, arrays.get("cotangent"))
    else:
        out = adapter.to_numpy(adapter.forward(impl, inputs, options))
    out = np.asarray(out)
    arrays_io.save(task.out_path, {"out": out})
    return Reply("ok", data={"shape": list(out.shape), "out_dtype": str(out.dtype)})


def _answer(adapter: Any, impls: dict[str, registry.Implementation], request: Request,
            reason: str, errors: list[str] | None = None) -> Reply:
    if isinstance(request, RooflineTask):
        from harness.worker import timing

        options = timing.TimingOptions.from_mapping(request.timing)
        return Reply("ok", data={"roofline": timing.measure_copy(adapter, request.device,
                                                                 options)})
    assert isinstance(request, (AccuracyTask, TimingTask))
    impl = impls.get(request.impl)
    if impl is None:  # e.g. an ad-hoc function that failed to import here: say why
        why = next((e for e in errors or () if request.impl in e), "")
        return Reply("unavailable", reason or why or f"unknown implementation {request.impl}")
    if isinstance(request, TimingTask):  # throughput timing (harness.worker.timing)
        from harness.worker import timing

        return timing.run_task(adapter, impl, request)
    return run_task(adapter, impl, request)


def serve(framework: str, device: str, proto: TextIO) -> int:
    from harness.worker.adapters import get_adapter
    from harness.worker.adapters.base import NotDifferentiable

    def send(line: str) -> None:
        proto.write(line + "\n")
        proto.flush()

    try:
        adapter = get_adapter(framework)
        available, reason = adapter.availability()
    except Exception as exc:
        available, reason, adapter = False, _one_line(exc), None
    impls: dict[str, registry.Implementation] = {}
    errors: list[str] = []
    settings: dict[str, Any] = {}
    if available and adapter is not None:
        found, errors = all_implementations()
        impls = {i.name: i for i in found if i.framework == framework}
        threads = os.environ.get("SOFTMAX_BENCH_THREADS")
        if threads:
            adapter.set_threads(int(threads))
        try:
            settings = adapter.settings()
        except Exception as exc:
            settings = {"error": _one_line(exc)}
        if device not in adapter.devices():
            available, reason = False, f"device {device!r} not present for {framework}"
    send(encode(Hello(available, reason, tuple(info(i) for i in impls.values()),
                      tuple(errors), settings, os.getpid())))
    for line in sys.stdin:
        request = decode_request(line)
        if isinstance(request, Stop):
            break
        if not available:
            reply = Reply("unavailable", reason)
        else:
            try:
                reply = _answer(adapter, impls, request, reason, errors)
            except NotDifferentiable as exc:
                reply = Reply("unsupported", _one_line(exc))
            except Exception as exc:
                reply = Reply("error", _one_line(exc))
                print(traceback.format_exc(), file=sys.stderr)
        send(json.dumps(reply.to_json()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Keep the protocol stream for ourselves; anything else printing to stdout goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if args == ["--list"]:
        impls, errors = all_implementations()
        catalog = Catalog(tuple(info(i) for i in impls), tuple(errors))
        proto.write(json.dumps(catalog.to_json()) + "\n")
        proto.flush()
        return 0
    if len(args) != 2:
        print("usage: python -m harness.worker FRAMEWORK DEVICE | --list", file=sys.stderr)
        return 2
    return serve(args[0], args[1], proto)


if __name__ == "__main__":
    raise SystemExit(main())
