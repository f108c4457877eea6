"""The Ray executor: the local executor's seam, with worker processes hosted by Ray actors.

``RayExecutor.run`` takes units off the same ``UnitQueue`` (framework affinity) with ``jobs``
driver threads. Each thread's session is a ``RaySession``: ``request(message, timeout)`` is a
call on a Ray actor (``RayHost``) placed on a node that has what the unit needs, and the actor
answers it with the same ``WorkerSession`` the local executor uses. The worker process and its
isolation stay as they are (timeouts, crashes, sticky device errors: the actor kills the worker
and the next request starts a fresh one). Replies come back to the driver, where the engine
scores them and alone writes results.jsonl (same fsync policy, same ``--resume``).

Resources an actor asks for: ``num_cpus`` = the run's ``--threads`` (default 1); ``num_gpus=1``
for ``--device cuda`` (Ray then sets ``CUDA_VISIBLE_DEVICES`` for the actor, and the worker
inherits it); and ``SLOTS_RESOURCE``: 1 slot for an accuracy unit, all ``SLOTS`` of a node for a
timing unit, so that a timing unit never shares its node (its CPU, or its GPU's host) with any
other softmax-bench unit. Every node must offer the resource (``ray start --resources``); a local
cluster started for the run offers it.

Files: an accuracy task names ``.npz`` files on the driver. A session ships each input file's
bytes to its actor once (the actor keeps a local copy in its own temporary directory), and the
output's bytes come back with the reply, written where the planner expects them: the same code
serves one machine and a cluster without a shared file system. Messages travel as the worker
protocol's own JSON lines.

Ctrl-C: ``stop()`` asks every live actor to kill its worker (actors take two calls at once, so
this runs beside a busy request), then kills the actors; records already written stay. With no
``--ray-address`` a local Ray cluster starts for the run and stops after it; a Ray already
initialised in this process (a notebook, the tests) is used as it is and left running.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.engine import workers
from harness.engine.local import RunUnit, UnitLike, WorkerSession, run_with_affinity
from harness.errors import ConfigError
from harness.messages import AccuracyTask, Hello, Reply, Request, decode_request, encode

SLOTS_RESOURCE = "softmax_bench_slots"
# Another resource name (SOFTMAX_BENCH_RAY_RESOURCE) keeps a run on the nodes that offer it: one
# kind of machine per run on a mixed cluster (docs/cluster.md).
RESOURCE_ENV = "SOFTMAX_BENCH_RAY_RESOURCE"
SLOTS = 1000  # per node: an accuracy unit takes 1, a timing unit all of them
CONNECT_TIMEOUT_S = 10.0  # a TCP probe of --ray-address before ray.init (which retries for long)
CLOSE_TIMEOUT_S = 30.0
NICENESS_ENV = "RAY_worker_niceness"
# The driver's environment variables its workers get too: the harness's own settings
# (SOFTMAX_BENCH_*) everywhere, and PYTHONPATH (plugins) on a local cluster. (A cluster's
# processes inherit the environment of whoever started them, not the driver's later changes.)
PASSED_PREFIX = "SOFTMAX_BENCH_"
PASSED_LOCAL = ("PYTHONPATH",)
# What Ray sets in an actor's environment that would change the worker: OMP_NUM_THREADS=1 (the
# frameworks would compute with one thread). The worker gets the driver's value, or none.
RAY_SETS = ("OMP_NUM_THREADS",)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'softmax-bench[ray]'") from None
    return ray


def start_local_cluster(num_cpus: int | None = None) -> None:
    """Start a local Ray cluster that can host softmax-bench units (the executor's own, and the
    tests'): the slots resource, no dashboard, the workers' output kept off the terminal, and
    Ray's worker processes at niceness 0 like the local executor's (Ray's default, 15, lets
    anything else on a shared machine take their CPU)."""
    ray = _ray()
    before = os.environ.get(NICENESS_ENV)
    os.environ[NICENESS_ENV] = "0"  # read by the raylet this starts
    try:
        ray.init(num_cpus=num_cpus, resources={SLOTS_RESOURCE: SLOTS}, include_dashboard=False,
                 log_to_driver=False, logging_level="warning")
    finally:
        if before is None:
            os.environ.pop(NICENESS_ENV, None)
        else:
            os.environ[NICENESS_ENV] = before


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _probe(address: str) -> None:
    """Fail at once, in one line, where ``address`` names a host and port nobody listens on
    (``ray.init`` would retry for minutes)."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray-gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or "
                          "auto")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: no Ray cluster answers there "
                          f"({exc.strerror or exc}); start one with 'ray start --head' or "
                          "leave out --ray-address for a local cluster") from None


class RayHost:
    """The Ray actor (``ray.remote(RayHost)``): one framework's worker process on its node."""

    def __init__(self, framework: str, device: str, env: dict[str, str], niceness: int = 0,
                 unset: tuple[str, ...] = ()):
        try:  # the driver's niceness for the worker (it inherits it), where that is allowed
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        except OSError:
            pass
        for name in unset:  # what Ray set and the driver does not have (RAY_SETS)
            os.environ.pop(name, None)
        self.session = WorkerSession(framework, device, env)
        self.node = socket.gethostname()
        self.tmp = tempfile.mkdtemp(prefix="softmax-bench-ray-")
        self.inputs: dict[str, str] = {}  # the driver's input path -> the local copy
        self.serial = 0
        self.hello_sent: Hello | None = None  # a worker's hello travels once

    def _local(self, stem: str) -> str:
        self.serial += 1
        return os.path.join(self.tmp, f"{stem}{self.serial}.npz")

    def sees(self, path: str) -> bool:
        """Whether the driver's file ``path`` is visible here (the same machine or a shared file
        system): then accuracy tasks use the driver's paths as they are, nothing is shipped."""
        return os.path.isfile(path)

    def request(self, line: str, files: Mapping[str, bytes], timeout: float, direct: bool
                ) -> dict[str, Any]:
        message = decode_request(line)
        out = ""
        if isinstance(message, AccuracyTask) and not direct:
            for driver_path, data in files.items():
                local = self._local("in")
                Path(local).write_bytes(data)
                self.inputs[driver_path] = local
            out = self._local("out")
            message = dataclasses.replace(message, inputs_path=self.inputs[message.inputs_path],
                                          out_path=out)
        reply = self.session.request(message, timeout)
        output = None
        if out and os.path.exists(out):
            output = Path(out).read_bytes()
            os.unlink(out)
        hello = self.session.hello
        fresh = hello is not None and hello is not self.hello_sent
        if fresh:
            self.hello_sent = hello
        return {"reply": reply.to_json(), "hello": hello.to_json() if fresh and hello else None,
                "output": output, "node": self.node}

    def kill_workers(self) -> None:
        workers.kill_all()

    def close(self) -> None:
        self.session.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class RaySession:
    """A session whose worker lives in a Ray actor; the actor starts on the first request and
    again after it died (a lost node: the task is recorded as a crash)."""

    def __init__(self, executor: RayExecutor, framework: str):
        self.framework = framework
        self._executor = executor
        self._actor: Any = None
        self._shipped: set[str] = set()
        self._direct: bool | None = None  # the actor sees the driver's files (RayHost.sees)
        self._hello: Hello | None = None
        self.node: str | None = None

    @property
    def hello(self) -> Hello | None:
        return self._hello

    def request(self, message: Request, timeout: float) -> Reply:
        ray = _ray()
        if self._executor.stopped:
            return Reply("crash", "stopped")
        if self._actor is None:
            self._actor = self._executor.new_actor(self.framework)
            self._shipped, self._direct = set(), None
        files: dict[str, bytes] = {}
        try:
            if isinstance(message, AccuracyTask):
                if self._direct is None:
                    self._direct = self._sees(message.inputs_path)
                if not self._direct and message.inputs_path not in self._shipped:
                    files[message.inputs_path] = Path(message.inputs_path).read_bytes()
            result = ray.get(self._actor.request.remote(encode(message), files, timeout,
                                                        bool(self._direct)))
        except (ray.exceptions.RayActorError, ray.exceptions.TaskCancelledError,
                ray.exceptions.ObjectLostError) as exc:
            self._drop()
            return Reply("crash", f"the Ray actor hosting the {self.framework} worker died: "
                                  f"{_first_line(exc)}")
        self._shipped.update(files)
        self.node = str(result["node"])
        if result["hello"] is not None:
            self._hello = Hello.from_json(result["hello"])
        if result["output"] is not None and isinstance(message, AccuracyTask):
            Path(message.out_path).write_bytes(result["output"])
        return Reply.from_json(result["reply"])

    def _sees(self, path: str) -> bool:
        """Whether the actor sees the driver's files (else they are shipped)."""
        return bool(_ray().get(self._actor.sees.remote(path)))

    def _drop(self) -> None:
        actor, self._actor = self._actor, None
        if actor is not None:
            self._executor.forget(actor)
            try:
                _ray().kill(actor)
            except Exception:  # already gone  # noqa: BLE001
                pass

    def close(self) -> None:
        if self._actor is None:
            return
        ray = _ray()
        try:
            ray.get(self._actor.close.remote(), timeout=CLOSE_TIMEOUT_S)
        except Exception:  # a dead or stuck actor: killed below  # noqa: BLE001
            pass
        self._drop()


class RayExecutor:
    """Units as Ray actors' work, ``jobs`` at once (see the module docstring)."""

    name = "ray"

    def __init__(self, device: str, jobs: int = 2, threads: int | None = None,
                 address: str | None = None, *, exclusive: bool = False,
                 num_cpus: int | None = None, resource: str | None = None):
        if jobs < 1:
            raise ValueError(f"--jobs {jobs}: must be at least 1")
        self.device, self.jobs, self.threads = device, jobs, threads
        self.resource = resource or os.environ.get(RESOURCE_ENV) or SLOTS_RESOURCE
        self.address, self.exclusive = address, exclusive
        self.env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIX)}
        if address is None:
            self.env.update({k: os.environ[k] for k in PASSED_LOCAL if k in os.environ})
        self.env.update({k: os.environ[k] for k in RAY_SETS if k in os.environ})
        self.unset = tuple(k for k in RAY_SETS if k not in os.environ)
        if threads:
            self.env["SOFTMAX_BENCH_THREADS"] = str(threads)
        self._stop = threading.Event()
        self._live: set[Any] = set()
        self._lock = threading.Lock()
        self._owned = False
        self._remote: Any = None
        self._connect(num_cpus)

    # -- the cluster ------------------------------------------------------------------------

    def _connect(self, num_cpus: int | None) -> None:
        ray = _ray()
        if self.address is not None:
            _probe(self.address)
        if not ray.is_initialized():
            if self.address is None:
                start_local_cluster(num_cpus)
                self._owned = True
            else:
                try:
                    ray.init(address=self.address, log_to_driver=False,
                             logging_level="warning")
                except Exception as exc:  # noqa: BLE001  (Ray raises many kinds)
                    raise ConfigError(f"--ray-address {self.address}: cannot join the Ray "
                                      f"cluster: {_first_line(exc)}") from None
        try:
            self._check_resources(ray.cluster_resources())
        except ConfigError:
            self.shutdown()
            raise
        self._remote = ray.remote(RayHost)

    def _check_resources(self, offered: Mapping[str, float]) -> None:
        where = f"the Ray cluster at {self.address}" if self.address else "the Ray cluster"
        need = SLOTS if self.exclusive else 1
        if offered.get(self.resource, 0) < need:
            raise ConfigError(
                f"{where} offers no '{self.resource}' resource for softmax-bench units; start "
                f"each node with ray start --resources='{{\"{self.resource}\": {SLOTS}}}' "
                "(docs/cluster.md)")
        if self.device == "cuda" and offered.get("GPU", 0) < 1:
            raise ConfigError(f"{where} has no GPU for --device cuda")

    def actor_options(self) -> dict[str, Any]:
        """What one unit's actor asks of its node."""
        return {"num_cpus": self.threads or 1,
                "num_gpus": 1 if self.device == "cuda" else 0,
                "resources": {self.resource: SLOTS if self.exclusive else 1},
                "max_concurrency": 2}  # a request and, beside it, kill_workers (Ctrl-C)

    def new_actor(self, framework: str) -> Any:
        actor = self._remote.options(**self.actor_options()).remote(
            framework, self.device, self.env, os.getpriority(os.PRIO_PROCESS, 0), self.unset)
        with self._lock:
            self._live.add(actor)
        return actor

    def forget(self, actor: Any) -> None:
        with self._lock:
            self._live.discard(actor)

    def describe(self) -> dict[str, Any]:
        """For run.json: where the run ran."""
        ray = _ray()
        nodes = [n for n in ray.nodes() if n.get("Alive")] if ray.is_initialized() else []
        return {"address": self.address, "local_cluster": self._owned,
                "nodes": sorted(str(n.get("NodeManagerHostname")) for n in nodes),
                "actor_options": self.actor_options()}

    def shutdown(self) -> None:
        """Stop the local cluster this executor started (a joined cluster stays)."""
        if self._owned:
            self._owned = False
            _ray().shutdown()

    # -- the executor seam -----------------------------------------------------------------

    def session(self, framework: str) -> RaySession:
        return RaySession(self, framework)

    def run(self, units: Sequence[UnitLike], run_unit: RunUnit, *, jobs: int | None = None
            ) -> None:
        run_with_affinity(self, units, run_unit, jobs or self.jobs, "ray-executor")

    def stop(self) -> None:
        """Stop taking units, kill every actor's worker, then the actors (Ctrl-C)."""
        self._stop.set()
        ray = _ray()
        with self._lock:
            live = list(self._live)
        kills = [actor.kill_workers.remote() for actor in live]
        deadline = time.monotonic() + 10.0
        for ref in kills:
            try:
                ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001  (a dead actor has no worker left)
                pass
        for actor in live:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        workers.kill_all()  # none here, unless a test drives a local session too

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()
