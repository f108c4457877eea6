"""`--executor ray`: the same records as the local executor, the same isolation, Ctrl-C, errors.

One local Ray cluster for the whole test session (2 CPUs, no dashboard): the executor uses a Ray
already initialised in its process and leaves it running. Ray is installed by `make test` (the
`ray` extra), so a missing Ray fails here rather than skipping.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import store as results
from harness.cli import main
from harness.engine.ray_executor import (
    SLOTS,
    SLOTS_RESOURCE,
    RayExecutor,
    RaySession,
    start_local_cluster,
)
from harness.errors import ConfigError
from harness.planning.request import RunOptions
from harness.run import run_suite
from harness.store import compare

pytestmark = pytest.mark.ray

SUITE = """name = "tiny-ray"
[[cases]]
family = "large_offset"
dtypes = ["float32"]
ops = ["softmax"]
[[cases]]
family = "smoke_small"
dtypes = ["float32", "float16"]
ops = ["softmax", "log_softmax"]
"""
BROKEN = """[softmax_bench.plugins]
broken = broken_plugins:plugins
envprobe = env_probe_plugin:plugins
"""
PLUGIN_MODULES = ("broken_plugins.py", "env_probe_plugin.py")
ONE_CASE = """name = "one"
[[cases]]
family = "smoke_small"
dtypes = ["float32"]
ops = ["softmax"]
"""
WHERE = ("wall_s", "run_id", "node")  # where and how long: the only fields that may differ


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    start_local_cluster(num_cpus=2)
    yield
    ray.shutdown()


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_ray_and_local_executors_give_identical_records(
        ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local, Ray on this machine (the actors read the driver's files), and Ray shipping the
    files as to another node: the same records."""
    suite = _suite(tmp_path, SUITE)
    frames = {}
    for name, executor in (("local", "local"), ("ray", "ray"), ("shipped", "ray")):
        if name == "shipped":
            monkeypatch.setattr(RaySession, "_sees", lambda self, path: False)
        opts = RunOptions(suite=str(suite), include=("numpy.*softmax_shifted",
                                                     "scipy.special.*softmax"),
                          out=tmp_path / name, executor=executor)
        path, counts, _ = run_suite(opts)
        assert counts.get("ok", 0) > 0
        assert results.read_run(path)["end"]["executor"] == executor
        frames[name] = results.load(path)
    local = frames["local"]
    for other in (frames["ray"], frames["shipped"]):
        table = compare.compare(local, other)
        assert set(table["change"]) <= {"unchanged", "not_comparable"}
        assert (table["change"] == "unchanged").sum() == (local["status"] == "ok").sum() > 0
        assert not any(compare.regression_counts(table).values())
    # every identity field and metric equal, record for record
    same = [frame.drop(columns=list(WHERE)).sort_values(list(results.KEY_FIELDS))
            .reset_index(drop=True).astype(str) for frame in frames.values()]
    assert len(same[0]) == len(same[1]) == len(same[2])
    assert same[0].equals(same[1]) and same[0].equals(same[2])
    # the node each record ran on: this machine; none for tasks that did not run
    for frame in frames.values():
        ran = frame["status"] == "ok"
        assert set(frame.loc[ran, "node"]) == {socket.gethostname()}
        assert frame.loc[frame["status"] == "unsupported", "node"].isna().all()
    detail = results.read_run(tmp_path / "ray")["end"]["ray"]
    assert detail["actor_options"]["resources"] == {SLOTS_RESOURCE: 1}


def test_a_worker_crash_hang_or_error_inside_a_ray_actor_is_a_record(
        ray_cluster: None, tmp_path: Path,
        install_plugins: Callable[[str, tuple[str, ...]], Path]) -> None:
    install_plugins(BROKEN, PLUGIN_MODULES)
    opts = RunOptions(suite=str(_suite(tmp_path, ONE_CASE)),
                      include=("broken.good", "broken.crash", "broken.hang", "broken.raise",
                               "envprobe.*"),
                      timeout=2.0, out=tmp_path / "run", executor="ray")
    path, _, _ = run_suite(opts)
    frame = results.load(path).query("`pass` == 'forward'")
    status = dict(zip(frame["implementation"], frame["status"]))
    assert status == {"broken.good": "ok", "broken.crash": "crash", "broken.hang": "timeout",
                      "broken.raise": "error", "envprobe.environment": "error"}
    message = dict(zip(frame["implementation"], frame["message"]))
    assert "SIGABRT" in message["broken.crash"]
    # the worker sees what a local one would: not Ray's OMP_NUM_THREADS=1 (one thread per
    # framework) nor Ray's niceness 15 for its workers
    omp = os.environ.get("OMP_NUM_THREADS")
    assert f"OMP_NUM_THREADS={omp!r} niceness={os.getpriority(os.PRIO_PROCESS, 0)}" in \
        message["envprobe.environment"]


def test_ctrl_c_kills_the_ray_work_and_keeps_the_records(
        ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        install_plugins: Callable[[str, tuple[str, ...]], Path]) -> None:
    """SIGINT while a worker in a Ray actor hangs: the run stops at once, the worker is killed,
    the interrupted task is not recorded, and --resume through Ray finishes the run."""
    install_plugins(BROKEN, PLUGIN_MODULES)
    suite, out, pidfile = _suite(tmp_path, ONE_CASE), tmp_path / "run", tmp_path / "worker.pid"
    monkeypatch.setenv("SOFTMAX_BENCH_TEST_PIDFILE", str(pidfile))

    def interrupt() -> None:
        deadline = time.monotonic() + 120
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    opts = RunOptions(suite=str(suite), include=("broken.good", "broken.hang"), timeout=600,
                      jobs=1, out=out, executor="ray")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_suite(opts)
    assert time.monotonic() - started < 120
    worker_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the hanging worker {worker_pid} still runs")
    kept = results.load(out)
    assert set(kept["implementation"]) == {"broken.good"}  # the interrupted task: no record
    monkeypatch.delenv("SOFTMAX_BENCH_TEST_PIDFILE")
    run_suite(RunOptions(suite=str(suite), include=("broken.good", "broken.hang"), timeout=2.0,
                         jobs=1, out=out, resume=True, executor="ray"))
    done = results.load(out)
    assert len(done) == 2 * len(kept)
    hang = done[(done["implementation"] == "broken.hang") & (done["pass"] == "forward")]
    assert set(hang["status"]) == {"timeout"}


@pytest.mark.parametrize("args, message", [
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: no Ray "
     "cluster answers there"),
    (["--executor", "ray", "--ray-address", "nonsense"], "expected HOST:PORT"),
    (["--ray-address", "127.0.0.1:1"], "--ray-address goes with --executor ray"),
])
def test_a_bad_ray_address_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path, ONE_CASE)
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite), "--impl", "numpy.softmax_shifted", "--out",
                 str(out), "--quiet", "--no-report", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()  # nothing created before the executor could start


def test_what_a_unit_asks_of_its_node(ray_cluster: None) -> None:
    cpu = RayExecutor("cpu", 1)
    assert cpu.actor_options() == {"num_cpus": 1, "num_gpus": 0,
                                   "resources": {SLOTS_RESOURCE: 1}, "max_concurrency": 2}
    timing = RayExecutor("cpu", 1, threads=2, exclusive=True)
    assert timing.actor_options()["resources"] == {SLOTS_RESOURCE: SLOTS}  # the whole node
    assert timing.actor_options()["num_cpus"] == 2
    assert timing.env["SOFTMAX_BENCH_THREADS"] == "2"
    # this cluster has no GPU: a CUDA run says so at once instead of waiting for one forever
    with pytest.raises(ConfigError, match="no GPU for --device cuda"):
        RayExecutor("cuda", 1)
    gpu = object.__new__(RayExecutor)
    gpu.device, gpu.threads, gpu.exclusive, gpu.address = "cuda", None, False, "head:6379"
    gpu.resource = SLOTS_RESOURCE
    assert gpu.actor_options()["num_gpus"] == 1
    with pytest.raises(ConfigError, match="offers no 'softmax_bench_slots' resource"):
        gpu._check_resources({"CPU": 8.0, "GPU": 1.0})
    # one kind of node per run: the resource its nodes offer (docs/cluster.md)
    gpu.resource = "softmax_bench_h100"
    assert gpu.actor_options()["resources"] == {"softmax_bench_h100": 1}
    gpu._check_resources({"GPU": 8.0, "softmax_bench_h100": 1000.0})
