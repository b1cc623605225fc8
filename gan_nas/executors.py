"""Executors: run one function over many tasks, serially, in processes, or on Ray.

All executors share one interface::

    with make_executor(cfg.run, init=load_data) as ex:
        for index, result in ex.map_unordered(evaluate, tasks):
            ...

``fn`` must be a top-level function (so it pickles by reference) that takes
one task (a plain dict) and returns a plain, JSON-able dict. A task whose
``fn`` raises becomes a result ``{"status": "failed", "error": "Type: msg",
"traceback": ...}``; a task whose worker process dies (SIGKILL, segfault,
out of memory) is retried up to ``max_retries`` times on a fresh worker and
then becomes ``{"status": "failed", "error": "worker died (...)"}``. Failed
candidates are data, never a crash of the search. ``KeyboardInterrupt`` is
not caught: it stops the map, and ``close`` ends the workers.

A pool's worker that has nothing left to do while others still run (the
end of a search's generation) can be given more work: ``map_unordered``'s
``idle`` callback is asked for one more task, given the ``(index, seconds
running)`` of the tasks still running.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gan_nas import interrupt, runtime
from gan_nas.config import RunConfig
from gan_nas.errors import ConfigError

Task = dict[str, Any]
Result = dict[str, Any]
TaskFn = Callable[[Task], Result]
Idle = Callable[[list[tuple[int, float]]], "Task | None"]

_ready_in_this_process: set[tuple[int, Callable[[], None] | None]] = set()  # Ray workers: init done once


def failed(error: str, tb: str | None = None, error_type: str | None = None) -> Result:
    """A failed task's result; ``error_type``: the exception's class name, where one was raised."""
    result: Result = {"status": "failed", "error": error}
    if tb is not None:
        result["traceback"] = tb
    if error_type is not None:
        result["error_type"] = error_type
    return result


def _call(fn: TaskFn, task: Task) -> Result:
    """Run ``fn(task)``, turning an exception (not KeyboardInterrupt) into a failed result."""
    try:
        return fn(task)
    except Exception as e:
        return failed(f"{type(e).__name__}: {e}", traceback.format_exc(), type(e).__name__)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"worker died (exit {exitcode}, {signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return f"worker died (exit {exitcode})"


class Executor:
    """Runs a function over tasks; see the module docstring.

    Attributes:
        workers: How many tasks run at once.
    """

    workers: int = 1

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        """Run ``fn`` on every task; yield ``(index into tasks, result)`` as each finishes.

        Every index is yielded exactly once. Leaving the loop early abandons
        the tasks still running.

        Args:
            fn: A top-level function of one task.
            tasks: The tasks.
            idle: Called when a worker has nothing to do while other tasks still
                run, with their ``(index, seconds running)``; returns one more task
                for that worker, or None. Extra tasks take the indices after
                ``tasks`` (``len(tasks)``, ``len(tasks) + 1``, ... in the order
                given) and the map waits for them too. Executors that never have an
                idle worker mid-map (serial) do not call it.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; the executor cannot be used afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs tasks one after another in this process."""

    def __init__(self, init: Callable[[], None] | None = None, threads: int = 0) -> None:
        """Run ``init`` in this process now.

        Args:
            init: Run once, now.
            threads: If positive, limit this process's TF threads (see :func:`gan_nas.runtime.limit_threads`).
        """
        runtime.limit_threads(threads)
        if init is not None:
            init()

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        for i, task in enumerate(tasks):  # one task at a time: no worker is ever idle while one runs
            yield i, _call(fn, task)


# -- process pool ----------------------------------------------------------------------------


def _die_with(parent_pid: int) -> None:
    """End this process when the parent does, even mid-task (Linux), or now if it already has.

    A search killed with SIGKILL cannot stop its workers; without this they
    would train their current candidates to the end, competing for the cores
    with a resumed search and writing the checkpoints it is writing again.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # no prctl: a worker then ends after its task (EOF on its pipe)
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(0)


def _worker_main(conn: multiprocessing.connection.Connection, threads: int,
                 init: Callable[[], None] | None, parent_pid: int, gpu: str | None = None) -> None:
    """A worker process: set threads (and its GPU), run ``init``, then answer ``(index, fn, task)`` messages."""
    _die_with(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if gpu is not None:  # before TensorFlow starts: it sees this one GPU only, as its /GPU:0
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    runtime.start_tensorflow(threads)  # TensorFlow's native start-up lines muted, as in the parent
    init_error = None
    if init is not None:
        try:
            init()
        except Exception as e:
            init_error = failed(f"worker init failed: {type(e).__name__}: {e}", traceback.format_exc())
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent went away
            break
        if msg is None:
            break
        index, fn, task = msg
        result = init_error or _call(fn, task)
        try:
            conn.send((index, result))
        except (EOFError, OSError):
            break
        except Exception as e:  # the result does not pickle
            conn.send((index, failed(f"result cannot be sent back: {type(e).__name__}: {e}")))
    # Every result is sent and every checkpoint written (fsynced, renamed) by now. A normal
    # interpreter exit would spend seconds tearing TensorFlow down while the search waits
    # in close(); exit at once instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    index: int | None = None  # the task it is running


class ProcessExecutor(Executor):
    """Long-lived worker processes (spawned), one task at a time each.

    Each worker owns a pipe, so a worker that dies loses only its own task:
    that task is retried on a fresh worker up to ``max_retries`` times, then
    reported as failed. Workers start when the pool is made (so that their
    start-up, mostly importing TensorFlow, overlaps the caller's own) and
    serve every later map. On Linux a worker is killed when the process
    (strictly, the thread) that started it dies, so that a search killed with
    SIGKILL leaves no worker training on; make the pool in a thread that
    outlives it.
    """

    def __init__(self, workers: int, threads: int, max_retries: int,
                 init: Callable[[], None] | None = None, gpus: list[str] | None = None) -> None:
        """Start the pool's workers.

        Args:
            workers: Worker processes.
            threads: TF intra-op threads per worker.
            max_retries: Extra attempts for a task whose worker died.
            init: Run once in each worker after its thread settings, e.g. to load a dataset.
            gpus: GPU ids (as ``CUDA_VISIBLE_DEVICES`` names them): worker slot ``i`` sees only
                ``gpus[i % len(gpus)]``, so that each candidate trains on a GPU of its own while there
                are as many workers as GPUs. None: workers see what this process sees.
        """
        self.workers, self.threads, self.max_retries, self.init = workers, threads, max_retries, init
        self.gpus = list(gpus) if gpus else None
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: list[_Worker | None] = [self._start(slot) for slot in range(workers)]

    def gpu_of(self, slot: int) -> str | None:
        """The GPU that worker slot ``slot`` is pinned to (None: not pinned)."""
        return None if self.gpus is None else self.gpus[slot % len(self.gpus)]

    def _start(self, slot: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main,
                                 args=(child, self.threads, self.init, os.getpid(), self.gpu_of(slot)),
                                 daemon=True, name="gan-nas-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _stop(self, slot: int, timeout: float = 5.0) -> None:
        w = self._pool[slot]
        self._pool[slot] = None
        if w is None:
            return
        if w.index is None and w.process.is_alive():
            try:
                w.conn.send(None)
            except OSError:
                pass
            w.process.join(timeout)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        tasks = list(tasks)  # extra tasks from ``idle`` are appended
        pending = collections.deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        started: dict[int, float] = {}
        running = 0
        settled = False  # nothing finished since idle was last asked: ask it again only when something did
        try:
            while pending or running:
                for slot in range(self.workers):
                    w = self._pool[slot]
                    if w is not None and w.index is not None:
                        continue
                    if not pending:
                        extra = None
                        if idle is not None and running and not settled:
                            now = time.monotonic()
                            extra = idle([(x.index, now - started[x.index]) for x in self._pool
                                          if x is not None and x.index is not None])
                        if extra is None:
                            break
                        tasks.append(extra)
                        attempts.append(0)
                        pending.append(len(tasks) - 1)
                    if w is None or not w.process.is_alive():
                        self._stop(slot)
                        w = self._pool[slot] = self._start(slot)
                    w.index = pending.popleft()
                    attempts[w.index] += 1
                    started[w.index] = time.monotonic()
                    running += 1
                    try:
                        w.conn.send((w.index, fn, tasks[w.index]))
                    except OSError:
                        pass  # it died just now: the wait below sees it
                settled = True
                busy = [(slot, w) for slot, w in enumerate(self._pool) if w is not None and w.index is not None]
                # Woken at least twice a second to act on a stop request (Ctrl-C, SIGTERM).
                multiprocessing.connection.wait([o for _, w in busy for o in (w.conn, w.process.sentinel)],
                                                timeout=0.5)
                interrupt.check()
                for slot, w in busy:
                    result = None
                    try:
                        if w.conn.poll():
                            result = w.conn.recv()
                    except (EOFError, OSError):
                        pass
                    if result is not None:
                        index, value = result
                        w.index = None
                        running -= 1
                        settled = False
                        yield index, value
                    elif not w.process.is_alive():
                        index, w.index = w.index, None
                        running -= 1
                        settled = False
                        self._stop(slot)
                        if attempts[index] > self.max_retries:
                            yield index, failed(_exit_reason(w.process.exitcode))
                        else:
                            pending.appendleft(index)
        finally:
            for slot, w in enumerate(self._pool):  # abandoned tasks: their workers hold stale work
                if w is not None and w.index is not None:
                    self._stop(slot)

    def close(self) -> None:
        for slot in range(self.workers):
            self._stop(slot)


# -- Ray -------------------------------------------------------------------------------------

RAY_PROBE_SECONDS = 10.0  # how long a cluster's address has to answer before the search gives up on it
RAY_NO_NODE_GRACE_SECONDS = 120.0  # mid-search: how long no live node may fit a candidate before the search stops
_RAY_NODE_CHECK_SECONDS = 5.0  # how often a map looks at the cluster's live nodes
# TensorFlow's logging settings: a Ray node started outside gan-nas has none of them (see forwarded_env)
FORWARDED_TF_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_CPP_VMODULE")


def _ray_task(fn: TaskFn, task: Task, threads: int, init: Callable[[], None] | None) -> Result:
    """A Ray task: once per worker process, set threads, import TensorFlow quietly and run ``init``,
    as a pool's worker does; then ``fn(task)``.

    TensorFlow prints its start-up lines (absl, oneDNN, CUDA) while it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says, and Ray relays a worker's stderr to the search's terminal;
    the level (:func:`forwarded_env`) mutes what it logs later (grappler's "remapper failed").
    """
    key = (threads, init)
    if key not in _ready_in_this_process:
        runtime.start_tensorflow(threads)
        if init is not None:
            init()
        _ready_in_this_process.add(key)
    return _call(fn, task)


def forwarded_env() -> dict[str, str]:
    """What Ray tasks get of this process's environment.

    The ``GAN_NAS_*`` variables (data and cache folders) and TensorFlow's
    logging settings (:data:`FORWARDED_TF_VARIABLES`; the CLI sets
    ``TF_CPP_MIN_LOG_LEVEL=3``), so that a worker on a node started outside
    gan-nas reads what this process reads and prints what it prints: Ray
    relays every worker's stderr to the search's terminal.
    """
    return {k: v for k, v in os.environ.items() if k.startswith("GAN_NAS_") or k in FORWARDED_TF_VARIABLES}


def _first_line(e: object) -> str:
    """The first line of an error (its class name if it has no text): Ray's run to pages."""
    lines = str(e).strip().splitlines()
    return lines[0].strip() if lines else type(e).__name__


def _probe_tcp(address: str, host: str, port: int, timeout: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(f"run.ray_address={address!r}: nothing answers there within {timeout:g} s "
                          f"({e.strerror or type(e).__name__})") from None


def probe_ray_address(address: str, timeout: float = RAY_PROBE_SECONDS) -> None:
    """Raise ConfigError unless a Ray cluster answers at ``address`` within ``timeout`` seconds.

    ``ray.init`` retries an address where no cluster answers for many minutes
    (20 attempts of about 40 s each in Ray 2.60), printing warnings all the
    while, so the search asks the cluster's GCS for its id first, with a
    deadline. ``"auto"`` is resolved as Ray resolves it (``RAY_ADDRESS``, then
    the cluster last started on this machine); ``ray://`` (Ray Client) gets a
    TCP connect only.

    Raises:
        ConfigError: Nothing answers (refused, no route, unknown host, no answer within
            ``timeout``), something that is not a Ray cluster answers, or the cluster wants
            Ray's authentication token and this process has none it accepts.
    """
    where = f"run.ray_address={address!r}"
    if address.startswith("ray://"):
        host, _, port = address[len("ray://"):].partition("/")[0].rpartition(":")
        try:
            _probe_tcp(address, host.strip("[]"), int(port), timeout)
        except ValueError:
            raise ConfigError(f"{where}: a Ray Client address is ray://host:port") from None
        return
    try:
        import grpc
        from ray._private import gcs_utils, services
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # a Ray whose internals moved: check the port at least
        host, _, port = address.rpartition(":")
        if address != "auto" and port.isdigit():
            _probe_tcp(address, host.strip("[]"), int(port), timeout)
        return
    try:
        canonical = services.canonicalize_bootstrap_address(address)
    except ConnectionError as e:  # "auto", and no cluster known on this machine
        raise ConfigError(f"{where}: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 (ValueError, socket.gaierror, ...)
        raise ConfigError(f"{where}: not the address of a Ray cluster (host:port, auto or ray://host:port): "
                          f"{_first_line(e)}") from None
    if canonical is None:  # "auto" and no cluster known here: ray.init says so at once
        return
    channel = gcs_utils.create_gcs_channel(canonical)
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise ConfigError(f"{where}: the Ray cluster there ({canonical}) wants Ray's authentication token and "
                              f"refused this one's: set RAY_AUTH_MODE=token, with the cluster's token in "
                              f"~/.ray/auth_token or RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it)"
                              ) from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            detail = f"no answer within {timeout:g} s"
        else:
            detail = f"{code.name.lower()}: {_first_line(e.details() or code.name)}"
        raise ConfigError(f"{where}: no Ray cluster answers there ({canonical}: {detail}); give the head's "
                          f"host:port (its `ray start --head --port`, 6379 by default)") from None
    finally:
        channel.close()


class RayExecutor(Executor):
    """One Ray task per candidate, on a local Ray instance or a cluster.

    Ray retries a task whose worker died (its process, or its whole node)
    ``max_retries`` times; after that the task is reported as failed. If Ray
    is already initialized in this process, that instance is used and left
    running on close. Each task runs with :func:`forwarded_env` (the
    ``GAN_NAS_*`` variables and TensorFlow's logging settings), so a worker
    reads the data and the feature classifier from where the search does, and
    prints what it prints, whatever environment its node started with.
    Candidates read their parents' checkpoints and write their own in the run
    directory, so on a cluster of several machines the run directory (and the
    classifier cache) must be on a filesystem every node mounts at the same
    path.

    A cluster that cannot run a candidate is an error, not a wait: no cluster
    at the address (:func:`probe_ray_address`), or no live node with the CPUs
    and GPUs a task asks for, when the executor is made or, mid-search, for
    ``no_node_grace`` seconds (nodes died and those left are too small).
    """

    def __init__(self, address: str | None, workers: int, threads: int, gpus: float, max_retries: int,
                 init: Callable[[], None] | None = None) -> None:
        """Join or start Ray.

        Args:
            address: A cluster to join ("auto", host:port or ray://host:port); None starts a
                local instance with ``workers * threads`` CPUs (even where one runs already).
            workers: Candidates at once on a local instance.
            threads: CPUs reserved by, and TF threads of, each task.
            gpus: GPUs reserved by each task.
            max_retries: Retries of a task whose worker died.
            init: Run once in each Ray worker process before its first task.

        Raises:
            ConfigError: Ray is not installed; no cluster answers at ``address`` within
                :data:`RAY_PROBE_SECONDS`, or it refuses to be joined; no live node has
                ``threads`` CPUs and ``gpus`` GPUs.
        """
        try:
            import ray
        except ImportError:
            raise ConfigError("run.executor=ray needs Ray: pip install 'gan-nas[ray]'") from None
        self._ray = ray
        self.workers, self.threads, self.gpus, self.init = workers, threads, gpus, init
        self.address = address
        self.no_node_grace = RAY_NO_NODE_GRACE_SECONDS
        self._started = False
        if not ray.is_initialized():
            if address:
                probe_ray_address(address)
            try:
                # "local": a new instance even where `ray start` runs a cluster, which address=None would join
                ray.init(address=address or "local", num_cpus=None if address else workers * threads,
                         include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as e:
                what = f"run.ray_address={address!r}: cannot join the Ray cluster" if address else \
                    "cannot start a local Ray instance"
                raise ConfigError(f"{what}: {_first_line(e)}") from None
            self._started = True
        problem = self._no_node_fits()
        if problem is not None:
            self.close()
            raise ConfigError(problem)
        self._options = {"num_cpus": threads, "num_gpus": gpus, "max_retries": max_retries}

    def _no_node_fits(self) -> str | None:
        """None if a live node has the CPUs and GPUs of one task (or the cluster cannot be asked),
        else what is missing, as an error message."""
        try:
            nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        except Exception:  # noqa: BLE001 (the GCS is restarting, say): no verdict
            return None
        if any(r.get("CPU", 0) >= self.threads and r.get("GPU", 0) >= self.gpus for r in nodes):
            return None
        asks = f"{self.threads} CPU{'s' if self.threads != 1 else ''}"
        if self.gpus:
            asks += f" and {self.gpus:g} GPU{'s' if self.gpus != 1 else ''}"
        has = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes[:8])
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
        return (f"no live node of {where} has the {asks} that a candidate asks for (run.threads, "
                f"run.gpus_per_candidate); its {len(nodes)} live node{'s' if len(nodes) != 1 else ''} "
                f"ha{'ve' if len(nodes) != 1 else 's'}: {has or 'none'}. Lower run.threads or "
                f"run.gpus_per_candidate, or add a node that has them")

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        ray = self._ray
        options = dict(self._options)
        env = forwarded_env()
        if env:  # where the data and the classifier cache are, and TF's log level, on every node as here
            options["runtime_env"] = {"env_vars": env}
        remote = ray.remote(_ray_task).options(**options)
        refs: dict[Any, int] = {}
        submitted: dict[int, float] = {}
        count = 0

        def submit(task: Task) -> None:
            nonlocal count
            refs[remote.remote(fn, task, self.threads, self.init)] = count
            submitted[count] = time.monotonic()
            count += 1

        for task in tasks:
            submit(task)
        next_check, unfit_since = time.monotonic() + _RAY_NODE_CHECK_SECONDS, None
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                interrupt.check()  # a stop request (Ctrl-C, SIGTERM): the finally cancels what runs
                for ref in done:
                    index = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as e:  # worker died, node lost, out of memory
                        result = failed(f"worker died ({type(e).__name__}: {_first_line(e)})", str(e))
                    yield index, result
                # fewer tasks than workers left: a worker is idle (seconds are since submission)
                while idle is not None and refs and len(refs) < self.workers:
                    now = time.monotonic()
                    extra = idle([(i, now - submitted[i]) for i in refs.values()])
                    if extra is None:
                        break
                    submit(extra)
                now = time.monotonic()
                if refs and now >= next_check:  # nodes died: do those left fit a task at all?
                    next_check = now + _RAY_NODE_CHECK_SECONDS
                    problem = self._no_node_fits()
                    if problem is None:
                        unfit_since = None
                    elif unfit_since is None:
                        unfit_since = now
                    if problem is not None and now - unfit_since >= self.no_node_grace:
                        raise ConfigError(f"{problem} (none for {now - unfit_since:.0f} s, mid-search: "
                                          f"what finished is kept; --resume goes on)")
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def pool_gpus(run_cfg: RunConfig, visible: list[str] | None = None) -> list[str]:
    """The GPUs a process pool pins its workers to, one each (``run.gpus_per_candidate = 1``).

    Args:
        run_cfg: the run settings.
        visible: the GPU ids this process may use; None: ``CUDA_VISIBLE_DEVICES`` where it is set,
            else the GPUs TensorFlow finds (numbered 0..n-1).

    Raises:
        ConfigError: a share other than one whole GPU (the pool cannot split or join GPUs: Ray can),
            or no GPU to use.
    """
    if run_cfg.gpus_per_candidate != 1:
        raise ConfigError(f"run.gpus_per_candidate = {run_cfg.gpus_per_candidate:g}: the process pool gives each "
                          "worker one whole GPU (1); fractions or several GPUs per candidate need run.executor = "
                          '"ray"')
    if visible is None:
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None:
            visible = [g.strip() for g in env.split(",") if g.strip() and not g.strip().startswith("-")]
        else:
            runtime.start_tensorflow()
            import tensorflow as tf

            visible = [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]
    if not visible:
        raise ConfigError("run.gpus_per_candidate = 1, but this machine shows TensorFlow no GPU "
                          "(CUDA_VISIBLE_DEVICES, drivers); set it to 0 to train on the CPU")
    return visible


def make_executor(run_cfg: RunConfig, init: Callable[[], None] | None = None) -> Executor:
    """The executor that ``run_cfg`` asks for.

    Args:
        run_cfg: ``executor``, ``workers``, ``threads`` (0: cores // workers),
            ``ray_address``, ``gpus_per_candidate``, ``max_retries``.
        init: A top-level function run once per worker (once here for serial).

    Raises:
        ConfigError: Unknown executor, or Ray requested but missing.
    """
    threads = run_cfg.threads or max(1, (os.cpu_count() or 1) // run_cfg.workers)
    if run_cfg.executor == "serial":
        return SerialExecutor(init, threads=run_cfg.threads)
    if run_cfg.executor == "process":
        return ProcessExecutor(run_cfg.workers, threads, run_cfg.max_retries, init,
                               gpus=pool_gpus(run_cfg) if run_cfg.gpus_per_candidate > 0 else None)
    if run_cfg.executor == "ray":
        return RayExecutor(run_cfg.ray_address, run_cfg.workers, threads, run_cfg.gpus_per_candidate,
                           run_cfg.max_retries, init)
    raise ConfigError(f"run.executor must be serial, process or ray, got {run_cfg.executor!r}")
