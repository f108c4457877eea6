"""PyTorch: tensors on "cpu" (or "cuda", the GPU seam), gradients through torch.autograd."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from harness.registry import Implementation
from harness.vocabulary import FRAMEWORKS
from harness.worker import compile_cache
from harness.worker.adapters.base import (
    Adapter,
    NotDifferentiable,
    exact_cast,
    synced_clock,
)


class TorchAdapter(Adapter):
    framework = "torch"
    module = "torch"
    install_hint = FRAMEWORKS["torch"].install_hint

    def _before_import(self) -> None:
        # inductor's caches (compiled code only, keyed by graph and options: compile_cache)
        os.environ[compile_cache.TORCH_ENV] = compile_cache.torch_cache_dir()

    def _gpu_devices(self) -> list[str]:
        torch = self.load()
        return ["cuda"] if torch.cuda.is_available() else []

    def _device(self, device: str) -> Any:
        torch = self.load()
        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}")
        return torch.device(device)

    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> Any:
        torch = self.load()
        arr = exact_cast(array, dtype)
        if arr.dtype.kind in "iu":
            # torch's losses take int64 class indices only ("expected ... Long", int32 refused).
            tensor = torch.from_numpy(arr.astype(np.int64))
        elif arr.dtype == np.dtype(ml_dtypes.bfloat16):
            # torch.from_numpy does not know ml_dtypes: move the 16-bit patterns unchanged.
            tensor = torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(arr.copy())
        return tensor.to(self._device(device))

    def to_numpy(self, tensor: Any) -> np.ndarray:
        torch = self.load()
        host = tensor.detach().cpu().resolve_conj().resolve_neg()
        if host.dtype == torch.bfloat16:
            return np.array(host.view(torch.int16).numpy().view(ml_dtypes.bfloat16), copy=True)
        return np.array(host.numpy(), copy=True)

    def dtype_of(self, tensor: Any) -> str:
        return str(tensor.dtype).removeprefix("torch.")

    def device_of(self, tensor: Any) -> str:
        return str(tensor.device.type)

    def synchronize(self, device: str, result: Any = None) -> None:
        if device == "cuda":
            self.load().cuda.synchronize()

    # -- timing -------------------------------------------------------------------------------

    def timing_clock(self, device: str) -> tuple[Callable[[], float], str]:
        if device != "cuda":
            return time.perf_counter, "perf_counter"
        # CUDA (untested here, no GPU on the project machine): a synchronising clock, so a round
        # of calls ends when its kernels have run; one sync per round, not per call (a sync per
        # call distorts short kernels, PyTorch PR #75393). The lead may switch to CUDA events on
        # the current stream (docs/measuring.md §2).
        return synced_clock(self.load().cuda.synchronize), \
            "perf_counter after torch.cuda.synchronize()"

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        # CPU ops are synchronous; on CUDA the clock synchronises once per round.
        return call, ""

    def copy_fn(self, device: str, nbytes: int) -> tuple[Callable[[], Any], str]:
        if device != "cuda":
            return super().copy_fn(device, nbytes)
        torch = self.load()  # CUDA path, untested here
        src = torch.randn(nbytes // 4, dtype=torch.float32, device="cuda")
        dst = torch.empty_like(src)
        return (lambda: dst.copy_(src)), "torch dst.copy_(src) on cuda (float32)"

    def peak_memory(self, target: Callable[[], Any], device: str) -> tuple[int | None, str]:
        if device != "cuda":
            return super().peak_memory(target, device)
        cuda = self.load().cuda  # CUDA path, untested here
        cuda.synchronize()
        before = cuda.memory_allocated()
        cuda.reset_peak_memory_stats()
        result = target()
        cuda.synchronize()
        peak = cuda.max_memory_allocated()
        del result
        return max(0, peak - before), ("torch.cuda.max_memory_allocated() during one call minus "
                                       "memory_allocated() before it (caching allocator)")

    def intra_op_threads(self) -> int | None:
        return int(self.load().get_num_threads())

    def _vjp_fn(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                cotangent_np: np.ndarray | None) -> Callable[[], Any]:
        torch = self.load()
        fn = impl.fn
        x = inputs[0].detach().requires_grad_(True)
        rest = inputs[1:]
        seed: list[Any] = []  # the cotangent tensor, made on the first call from the output

        def vjp() -> Any:
            with torch.enable_grad():
                # Under @compile, AOTAutograd compiles the backward together with the forward.
                out = fn(x, *rest, **options)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                raise NotDifferentiable(f"{impl.name}: the output does not require grad "
                                        "(it is cut off from the logits)")
            if not seed:
                seed.append(torch.ones_like(out) if cotangent_np is None
                            else self._cotangent_like(cotangent_np, out))
            (gx,) = torch.autograd.grad(out, x, grad_outputs=seed[0], allow_unused=True)
            return torch.zeros_like(x) if gx is None else gx

        return vjp

    def set_threads(self, n: int) -> None:
        torch = self.load()
        torch.set_num_threads(n)
        self._threads_requested = n
        self._threads_notes = [f"torch.set_num_threads({n}); inter-op threads left at "
                               f"{torch.get_num_interop_threads()}"]

    def settings(self) -> dict[str, Any]:
        torch = self.load()
        out = super().settings()
        out.update({
            "torch_intra_op_threads": torch.get_num_threads(),
            "torch_inter_op_threads": torch.get_num_interop_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
            "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch_cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "torch_cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "torch_cuda_matmul_allow_fp16_reduced_precision_reduction":
                bool(torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction),
            "torch_cuda_version": torch.version.cuda,
            "torch_cuda_available": bool(torch.cuda.is_available()),
            "TORCHINDUCTOR_ONLINE_SOFTMAX": os.environ.get("TORCHINDUCTOR_ONLINE_SOFTMAX",
                                                           "unset"),
            compile_cache.TORCH_ENV: os.environ.get(compile_cache.TORCH_ENV, "unset"),
        })
        # torch_impls.skip_guard_latency_profile, applied by every @compile implementation
        out["torch_compile_guard_latency_profile"] = "skipped (a log-only metric)"
        if "torch._dynamo" in sys.modules:  # only once something was compiled
            dynamo_config = sys.modules["torch._dynamo"].config
            out["torch_dynamo_recompile_limit"] = dynamo_config.recompile_limit
            out["torch_dynamo_fail_on_recompile_limit_hit"] = \
                dynamo_config.fail_on_recompile_limit_hit
        return out
