"""Where the frameworks' persistent compilation caches go, and that the workers use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.worker import compile_cache


def test_default_directory_is_under_the_user_cache(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.directory("jax") == tmp_path / "softmax-bench-compile" / "jax"


def test_the_variable_moves_or_disables_it(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "cc"))
    assert compile_cache.directory("tensorflow") == tmp_path / "cc" / "tensorflow"
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.directory("jax") is None
    assert compile_cache.tensorflow_flags("--tf_xla_auto_jit=0") == "--tf_xla_auto_jit=0"


def test_tensorflow_flags_add_the_cache_once(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path))
    flags = compile_cache.tensorflow_flags("--tf_xla_auto_jit=0")
    assert flags == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path}/tensorflow"
    assert (tmp_path / "tensorflow").is_dir()
    assert compile_cache.tensorflow_flags(flags) == flags  # a user's own setting wins


def test_torch_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(compile_cache.TORCH_ENV, raising=False)
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "cc"))
    assert compile_cache.torch_cache_dir() == str(tmp_path / "cc" / "torch")
    monkeypatch.setenv(compile_cache.ENV, "off")
    first, second = compile_cache.torch_cache_dir(), compile_cache.torch_cache_dir()
    assert first != second and Path(first).is_dir()  # cold: a fresh directory each time
    monkeypatch.setenv(compile_cache.TORCH_ENV, str(tmp_path / "mine"))
    assert compile_cache.torch_cache_dir() == str(tmp_path / "mine")  # the user's wins


@pytest.mark.framework
@pytest.mark.parametrize("framework, key", [("jax", "jax_compilation_cache_dir"),
                                            ("tensorflow", "TF_XLA_FLAGS"),
                                            ("torch", "TORCHINDUCTOR_CACHE_DIR")])
def test_workers_record_and_fill_the_cache(framework: str, key: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker reports the cache in its settings, and compiling writes entries there."""
    import numpy as np

    from harness import arrays_io
    from harness.engine.workers import Worker
    from harness.messages import AccuracyTask

    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "cc"))
    # an in-process TensorFlow adapter of an earlier test may have set it; a set value wins
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    impl = {"jax": "jax.nn.softmax@jit", "tensorflow": "tensorflow.nn.softmax@xla",
            "torch": "torch.nn.functional.softmax@compile"}[framework]
    arrays_io.save(tmp_path / "in.npz", {"x": np.array([[1.0, 2.0, 3.0]], dtype=np.float32)})
    worker = Worker(framework, "cpu")
    try:
        assert str(tmp_path / "cc" / framework) in str(worker.hello.settings[key])
        reply = worker.request(AccuracyTask(impl, "forward", "float32", "cpu",
                                            str(tmp_path / "in.npz"), str(tmp_path / "out.npz")),
                               timeout=120)
    finally:
        worker.close()
    assert reply.status == "ok", reply.message
    assert any((tmp_path / "cc" / framework).iterdir())


@pytest.mark.framework
def test_torch_compile_skips_only_the_guard_latency_log() -> None:
    """``@compile`` replaces dynamo's log-only guard timing (a cache flush per recompile); the
    compiled function still compiles for each shape and agrees with eager (within an ulp or
    two: inductor's kernel is its own, which is what the suite measures)."""
    import torch
    import torch._dynamo.guards as guards

    from harness.worker.impls import torch_impls

    compiled = torch_impls.compile_(torch_impls.log_softmax)
    assert guards.profile_guard_manager(None, None, 1) == 0.0
    for c in (3, 5, 8):
        x = torch.linspace(-4.0, 9.0, 2 * c, dtype=torch.float32).reshape(2, c)
        torch.testing.assert_close(compiled(x), torch.nn.functional.log_softmax(x, dim=-1))


@pytest.mark.framework
def test_jax_lowers_in_one_mlir_context_with_the_same_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``share_mlir_context`` makes JAX reuse one MLIR context; lowering new shapes in it gives
    the executables a fresh context per lowering gives (same outputs, bit for bit)."""
    import jax
    import numpy as np
    from jax._src.interpreters import mlir

    from harness.worker.adapters.jax_adapter import share_mlir_context

    def outputs() -> list[bytes]:
        out = []
        for c in (3, 7, 11):  # new shapes: each lowers afresh
            x = np.linspace(-3.0, 5.0, 2 * c, dtype=np.float32).reshape(2, c)
            y, pull = jax.vjp(lambda v: jax.nn.log_softmax(v, axis=-1), x)
            out += [np.asarray(y).tobytes(), np.asarray(pull(y)[0]).tobytes()]
        jax.clear_caches()  # the next call lowers again
        return out

    # JAX's own function (an in-process adapter of an earlier test may have shared it already);
    # whatever is there now is put back after the test
    original = getattr(mlir.make_ir_context, "original", mlir.make_ir_context)
    monkeypatch.setattr(mlir, "make_ir_context", original)
    fresh = outputs()
    assert mlir.make_ir_context() is not mlir.make_ir_context()
    assert share_mlir_context()
    assert mlir.make_ir_context() is mlir.make_ir_context()
    assert share_mlir_context()  # a second call keeps the one context
    assert outputs() == fresh
