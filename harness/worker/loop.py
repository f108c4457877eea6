"""The worker process: runs implementations of one framework on one device.

``python -m harness.worker FRAMEWORK DEVICE`` speaks JSON lines: it first writes a ``hello``
message (availability, implementations, numerics settings), then answers one ``task`` per line
read from stdin. Arrays travel as ``.npz`` files (never pickle) whose paths the task names.
A task with ``"mode": "time"`` is a throughput measurement instead (``harness.worker.timing``): the
worker generates its inputs from the task's seed and shape, and replies with the timing fields.
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

from harness import arrays_io, registry
from harness.ops import OPS
from harness.vocabulary import BACKWARD, FRAMEWORKS


def describe(impl: registry.Implementation) -> dict[str, Any]:
    """JSON metadata of an implementation (everything but the function)."""
    return {"name": impl.name, "op": impl.op, "framework": impl.framework,
            "dtypes": list(impl.dtypes), "devices": list(impl.devices),
            "description": impl.description, "options": sorted(impl.options),
            "differentiable": impl.differentiable, "source": impl.source}


def all_implementations() -> tuple[list[registry.Implementation], list[str]]:
    """Built-ins of every framework plus plugins, and the errors of rejected registrations."""
    impls: list[registry.Implementation] = []
    errors: list[str] = []
    for framework in FRAMEWORKS:
        try:
            impls.extend(registry.builtin_implementations(framework))
        except Exception as exc:  # a broken built-in module is reported, not fatal
            errors.append(f"built-ins of {framework}: {type(exc).__name__}: {exc}")
    plugins = registry.load_plugins()
    taken = {i.name for i in impls}
    for impl in plugins.implementations:
        if impl.name in taken:
            errors.append(f"plugin {impl.source}: implementation name {impl.name!r} is taken")
            continue
        impls.append(impl)
    return impls, errors + list(plugins.errors)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def run_task(adapter: Any, impl: registry.Implementation, task: dict[str, Any]) -> dict[str, Any]:
    """Run one (implementation, pass, case) and write its output array."""
    spec = OPS[impl.op]
    arrays = arrays_io.load(task["inputs_path"])
    device, dtype = task["device"], task["dtype"]
    inputs = []
    for name in spec.inputs:
        arr = arrays[name]
        # labels and probabilities share the logits' dtype; class indices stay integers
        inputs.append(adapter.to_framework(arr, dtype if arr.dtype.kind == "f" else
                                           str(arr.dtype), device))
    options = task.get("options") or {}
    if "weight" in options and options["weight"] is not None:
        options = {**options, "weight": adapter.to_framework(
            np.asarray(options["weight"], dtype=np.float64), dtype, device)}
    if task["pass"] == BACKWARD:
        cot = arrays.get("cotangent")
        out = adapter.backward(impl, inputs, options, cot)
    else:
        out = adapter.to_numpy(adapter.forward(impl, inputs, options))
    out = np.asarray(out)
    arrays_io.save(task["out_path"], {"out": out})
    return {"status": "ok", "shape": list(out.shape), "out_dtype": str(out.dtype)}


def serve(framework: str, device: str, proto: TextIO) -> int:
    from harness.worker.adapters import get_adapter

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg) + "\n")
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
    send({"type": "hello", "available": available, "reason": reason,
          "implementations": [describe(i) for i in impls.values()], "errors": errors,
          "settings": settings, "pid": os.getpid()})
    for line in sys.stdin:
        task = json.loads(line)
        if task.get("type") == "stop":
            break
        reply: dict[str, Any] = {"type": "result", "id": task["id"]}
        impl = impls.get(task["impl"])
        if impl is None or not available:
            reply.update(status="unavailable", message=reason or f"unknown {task['impl']}")
        else:
            try:
                if task.get("mode") == "time":  # throughput timing (harness.worker.timing)
                    from harness.worker import timing

                    reply.update(timing.run_task(adapter, impl, task))
                else:
                    reply.update(run_task(adapter, impl, task))
            except Exception as exc:
                from harness.worker.adapters.base import NotDifferentiable

                if isinstance(exc, NotDifferentiable):
                    reply.update(status="unsupported", message=_one_line(exc))
                else:
                    reply.update(status="error", message=_one_line(exc))
                    print(traceback.format_exc(), file=sys.stderr)
        send(reply)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Keep the protocol stream for ourselves; anything else printing to stdout goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if args == ["--list"]:
        impls, errors = all_implementations()
        proto.write(json.dumps({"implementations": [describe(i) for i in impls],
                                "errors": errors}) + "\n")
        proto.flush()
        return 0
    if len(args) != 2:
        print("usage: python -m harness.worker FRAMEWORK DEVICE | --list", file=sys.stderr)
        return 2
    return serve(args[0], args[1], proto)


if __name__ == "__main__":
    raise SystemExit(main())
