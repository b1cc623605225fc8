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
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gan_nas import interrupt
from gan_nas.config import RunConfig
from gan_nas.errors import ConfigError

Task = dict[str, Any]
Result = dict[str, Any]
TaskFn = Callable[[Task], Result]
Idle = Callable[[list[tuple[int, float]]], "Task | None"]

_ready_in_this_process: set[tuple[int, Callable[[], None] | None]] = set()  # Ray workers: init done once


def _init_worker(threads: int) -> None:
    """Limit a worker's threads; call before TensorFlow is imported.

    Sets ``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS`` (= ``threads``) and
    ``TF_NUM_INTEROP_THREADS`` (= 1), which TensorFlow reads when its runtime
    starts; if TensorFlow is already imported, also sets them through
    ``tf.config.threading`` (ignored once the runtime has started).

    Args:
        threads: Intra-op threads for this worker.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # workers share a GPU's memory, not grab it
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # the runtime is already initialized
            pass


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
            threads: If positive, limit this process's TF threads (see :func:`_init_worker`).
        """
        if threads > 0:
            _init_worker(threads)
        if init is not None:
            init()

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        for i, task in enumerate(tasks):  # one task at a time: no worker is ever idle while one runs
            yield i, _call(fn, task)


# -- process pool ----------------------------------------------------------------------------


def import_tensorflow_quietly(threads: int = 0) -> None:
    """Import TensorFlow with native stderr muted: its C++ start-up banner is not for users.

    Args:
        threads: If positive, TensorFlow's intra-op threads (set before its runtime starts).
    """
    if "tensorflow" in sys.modules:
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401
        import tensorflow as tf

        if threads > 0:
            _init_worker(threads)  # before the runtime starts on the next line
        tf.constant(0.0) + 1.0  # device set-up logs once, here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    tf.get_logger().setLevel("ERROR")  # e.g. "triggered tf.function retracing": one function per candidate is by design


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
                 init: Callable[[], None] | None, parent_pid: int) -> None:
    """A worker process: set threads, run ``init``, then answer ``(index, fn, task)`` messages."""
    _die_with(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _init_worker(threads)
    import_tensorflow_quietly()  # TensorFlow's native start-up lines, muted as in the parent
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
    # interpreter exit would spend about 2 s tearing TensorFlow down while the search waits
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
                 init: Callable[[], None] | None = None) -> None:
        """Start the pool's workers.

        Args:
            workers: Worker processes.
            threads: TF intra-op threads per worker.
            max_retries: Extra attempts for a task whose worker died.
            init: Run once in each worker after its thread settings, e.g. to load a dataset.
        """
        self.workers, self.threads, self.max_retries, self.init = workers, threads, max_retries, init
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: list[_Worker | None] = [self._start() for _ in range(workers)]

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.threads, self.init, os.getpid()),
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
                        w = self._pool[slot] = self._start()
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


def _ray_task(fn: TaskFn, task: Task, threads: int, init: Callable[[], None] | None) -> Result:
    """A Ray task: set threads and run ``init`` once per worker process, then ``fn(task)``."""
    key = (threads, init)
    if key not in _ready_in_this_process:
        _init_worker(threads)
        if init is not None:
            init()
        _ready_in_this_process.add(key)
    return _call(fn, task)


def forwarded_env() -> dict[str, str]:
    """This process's ``GAN_NAS_*`` variables (data and cache folders), which Ray tasks get too."""
    return {k: v for k, v in os.environ.items() if k.startswith("GAN_NAS_")}


class RayExecutor(Executor):
    """One Ray task per candidate, on a local Ray instance or a cluster.

    Ray retries a task whose worker died ``max_retries`` times; after that
    the task is reported as failed. If Ray is already initialized in this
    process, that instance is used and left running on close. Each task runs
    with this process's ``GAN_NAS_*`` variables (:func:`forwarded_env`), so a
    worker reads the data and the feature classifier from where the search
    does, whatever environment its node started with. Candidates read their
    parents' checkpoints and write their own in the run directory, so on a
    cluster of several machines the run directory (and the classifier cache)
    must be on a filesystem every node mounts at the same path.
    """

    def __init__(self, address: str | None, workers: int, threads: int, gpus: float, max_retries: int,
                 init: Callable[[], None] | None = None) -> None:
        """Join or start Ray.

        Args:
            address: A cluster to join ("auto" or host:port); None starts a local instance
                with ``workers * threads`` CPUs.
            workers: Candidates at once on a local instance.
            threads: CPUs reserved by, and TF threads of, each task.
            gpus: GPUs reserved by each task.
            max_retries: Retries of a task whose worker died.
            init: Run once in each Ray worker process before its first task.

        Raises:
            ConfigError: Ray is not installed, or the cluster cannot be reached.
        """
        try:
            import ray
        except ImportError:
            raise ConfigError("run.executor=ray needs Ray: pip install 'gan-nas[ray]'") from None
        self._ray = ray
        self.workers, self.threads, self.init = workers, threads, init
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address or None, num_cpus=None if address else workers * threads,
                         include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
            except ConnectionError as e:
                raise ConfigError(f"run.ray_address={address!r}: cannot join the Ray cluster: {e}") from None
            self._started = True
        self._options = {"num_cpus": threads, "num_gpus": gpus, "max_retries": max_retries}

    def map_unordered(self, fn: TaskFn, tasks: list[Task], idle: Idle | None = None
                      ) -> Iterator[tuple[int, Result]]:
        ray = self._ray
        options = dict(self._options)
        env = forwarded_env()
        if env:  # where the data and the classifier cache are, on every node as here
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
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                interrupt.check()  # a stop request (Ctrl-C, SIGTERM): the finally cancels what runs
                for ref in done:
                    index = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as e:  # worker died, node lost, out of memory
                        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                        result = failed(f"worker died ({type(e).__name__}: {first})", str(e))
                    yield index, result
                # fewer tasks than workers left: a worker is idle (seconds are since submission)
                while idle is not None and refs and len(refs) < self.workers:
                    now = time.monotonic()
                    extra = idle([(i, now - submitted[i]) for i in refs.values()])
                    if extra is None:
                        break
                    submit(extra)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


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
        return ProcessExecutor(run_cfg.workers, threads, run_cfg.max_retries, init)
    if run_cfg.executor == "ray":
        return RayExecutor(run_cfg.ray_address, run_cfg.workers, threads, run_cfg.gpus_per_candidate,
                           run_cfg.max_retries, init)
    raise ConfigError(f"run.executor must be serial, process or ray, got {run_cfg.executor!r}")
